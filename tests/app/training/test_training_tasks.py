"""The Training tab on Gymnasium's toy-text tasks: the form picks the task, a run trains in the
training process, streams its episodes to the plots, and ends with the greedy table saved,
verified (Gymnasium's replay and its exact value) and chained, as a cyber-defense run's policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFormLayout, QLabel

from app import settings
from app.model import AppModel
from app.training_form import CYBER, TrainingForm
from app.training_tab import TrainingTab
from policyledger_core.learn.hyper import HYPER_PRESETS
from policyledger_core.learn.tabular import recommended, train_tabular
from policyledger_core.policy import TaskPolicy
from policyledger_core.tasks.base import fraction_of_optimum
from policyledger_core.tasks.spec import CATALOGUE
from policyledger_core.tasks.toytext import toy_text_task
from policyledger_core.verify.tasks import verify_task

HYPER_FIELDS = ("learning_rate", "lr_exponent", "discount", "epsilon_start", "epsilon_end", "epsilon_decay",
                "initial_q")


@pytest.fixture
def tab(qtbot: Any, tmp_path: Path) -> Iterator[TrainingTab]:
    widget = TrainingTab(AppModel(tmp_path / "ws", tmp_path / "cfg"))
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget._training.shutdown()


def pick(form: TrainingForm, task_id: str) -> None:
    index = form.task.findData(task_id)
    assert index >= 0, task_id
    form.task.setCurrentIndex(index)


def shown_values(form: TrainingForm) -> dict[str, Any]:
    values: dict[str, Any] = {name: form.fields[name].value() for name in HYPER_FIELDS}
    values["lr_schedule"] = form.schedule.currentText()
    values["episodes"] = None if form.until_stopped.isChecked() else form.episodes.value()
    return values


def preset_values(hyper: Any) -> dict[str, Any]:
    return {name: getattr(hyper, name) for name in (*HYPER_FIELDS, "lr_schedule", "episodes")}


def same_figures(entry: Any, policy: TaskPolicy) -> None:
    """The entry records exactly what verifying the policy here gives."""
    report = verify_task(policy)
    v = entry.body["verification"]
    assert v["mean"] == report.mean and v["ci95"] == report.ci95 and v["std"] == report.std
    assert v["exact_value"] == report.expected and v["optimum"] == report.optimum
    assert v["fraction_of_optimum"] == report.fraction_of_optimum
    assert v["replay_digest"] == report.replay_digest and v["episodes"] == report.episodes == 1000


# -- the form ---------------------------------------------------------------------------------------


def test_every_task_is_offered_after_cyber_defense(qtbot: Any) -> None:
    form = TrainingForm()
    qtbot.addWidget(form)
    assert [form.task.itemData(i) for i in range(form.task.count())] == [CYBER, *CATALOGUE]
    titles = [info.title for info in CATALOGUE.values()]
    assert [form.task.itemText(i) for i in range(1, form.task.count())] == titles
    assert form.task_id() is None and form.task.currentText() == "Cyber defense"


@pytest.mark.parametrize("task_id", sorted(CATALOGUE))
def test_picking_a_task_fills_its_recommended_values_and_one_agent(qtbot: Any, task_id: str) -> None:
    form = TrainingForm()
    qtbot.addWidget(form)
    form.agents.setValue(8)
    form.seed.setValue(5)
    pick(form, task_id)
    assert form.task_id() == task_id
    assert shown_values(form) == preset_values(recommended(task_id, "q"))
    assert form.hyperparameters() == recommended(task_id, "q").replace(seed=5)  # the seed is kept
    assert not form.agents.isEnabled() and "one agent" in form.agents.toolTip()
    assert form.population() == 1 and not form.chain_all.isEnabled()
    assert not form.preset.isEnabled() and "Cyber defense only" in form.preset.toolTip()
    assert [form.hyper.itemText(i) for i in range(form.hyper.count())] == ["recommended"]
    pick(form, CYBER)  # back: the cyber-defense task's presets and population
    assert shown_values(form) == preset_values(HYPER_PRESETS["recommended"])
    assert form.agents.isEnabled() and form.preset.isEnabled() and form.population() == 8
    assert form.chain_all.isEnabled()
    assert [form.hyper.itemText(i) for i in range(form.hyper.count())] == list(HYPER_PRESETS)


def test_a_tasks_values_follow_the_algorithm_until_edited(qtbot: Any) -> None:
    form = TrainingForm()
    qtbot.addWidget(form)
    pick(form, "FrozenLake8x8-v1")
    form.algorithm.setCurrentText("Double Q-learning")  # its own measured values (decay, episodes)
    assert form.algorithm_id() == "double-q"
    assert shown_values(form) == preset_values(recommended("FrozenLake8x8-v1", "double-q"))
    form.fields["learning_rate"].setValue(0.5)  # edited: an algorithm change keeps it
    form.algorithm.setCurrentText("Q-learning")
    assert form.fields["learning_rate"].value() == 0.5
    assert form.episodes.value() == recommended("FrozenLake8x8-v1", "double-q").episodes


def test_the_task_has_a_keyboard_shortcut(qtbot: Any) -> None:
    form = TrainingForm()
    qtbot.addWidget(form)
    layout = form.layout()
    assert isinstance(layout, QFormLayout)
    label = layout.labelForField(form.task)
    assert isinstance(label, QLabel) and label.buddy() is form.task
    assert label.text() == "Tas&k"  # Alt+K
    episodes = [w for w in form.findChildren(QLabel) if w.text() == "&Episodes"]
    assert [w.buddy() for w in episodes] == [form.episodes]  # still Alt+E, beside "until stopped" now
    with qtbot.waitActive(form):
        form.show()
        form.activateWindow()
    form.seed.setFocus()
    qtbot.keyClick(form, Qt.Key.Key_K, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is form.task, timeout=2000)


def test_the_form_remembers_the_task(qtbot: Any) -> None:
    form = TrainingForm()
    qtbot.addWidget(form)
    pick(form, "CliffWalking-v1")
    form.algorithm.setCurrentText("Double Q-learning")
    form.fields["discount"].setValue(0.9)
    form.until_stopped.setChecked(True)
    state = form.state()
    assert json.loads(state)["task"] == "CliffWalking-v1"
    other = TrainingForm()
    qtbot.addWidget(other)
    other.restore(state)
    assert other.task_id() == "CliffWalking-v1" and other.algorithm_id() == "double-q"
    assert other.fields["discount"].value() == 0.9 and other.until_stopped.isChecked()
    assert not other.agents.isEnabled()
    older = json.loads(state)
    del older["task"]  # a state saved before tasks existed: the cyber-defense task
    other.restore(json.dumps(older))
    assert other.task_id() is None and other.agents.isEnabled()


def test_the_window_keeps_the_task_between_sessions(qtbot: Any, tmp_path: Path) -> None:
    from app.main_window import MainWindow

    config = tmp_path / "cfg"
    window = MainWindow(workspace=tmp_path / "ws", config_dir=config)
    qtbot.addWidget(window)
    pick(window.training_tab.form, "Taxi-v4")
    window.close()
    assert json.loads(str(settings.read("training/form", config)))["task"] == "Taxi-v4"
    again = MainWindow(workspace=tmp_path / "ws", config_dir=config)
    qtbot.addWidget(again)
    assert again.training_tab.form.task_id() == "Taxi-v4"
    assert again.training_tab.form.task.currentText() == "Taxi"
    again.close()


# -- training ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", ["Taxi-v4", "CliffWalking-v1"])
def test_a_task_run_chains_its_table_verified_in_gymnasium(qtbot: Any, tab: TrainingTab,
                                                           task_id: str) -> None:
    pick(tab.form, task_id)
    tab.form.seed.setValue(4)
    tab.form.agents.setValue(1)
    episodes = recommended(task_id).episodes
    assert episodes is not None
    with qtbot.waitSignal(tab.training_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    saved = blocker.args[0]
    ledger = tab.model.ctx.ledger
    assert len(saved) == 1 and saved[0].created and len(ledger) == 1
    entry = ledger.entry(0)
    policy = saved[0].policy
    assert isinstance(policy, TaskPolicy) and entry.policy_hash == policy.hash
    assert entry.body["env_id"] == task_id and entry.body["config"] == CATALOGUE[task_id].config_dict()
    task = toy_text_task(task_id)
    reference = train_tabular(task.model(), task.horizon, recommended(task_id).replace(seed=4))
    assert policy.actions == tuple(int(a) for a in reference.actions)  # learned as the core learns it
    same_figures(entry, policy)
    training = entry.body["training"]
    assert (training["algorithm"], training["episodes"], training["seed"], training["agents"]) == \
        ("q", episodes, 4, 1)
    assert training["training_reward"] == pytest.approx(reference.returns[-100:].mean())
    # Streamed like a cyber run: every episode plotted, the progress complete.
    assert tab.plots.points == episodes and tab.progress.value() == episodes
    assert not tab.plots.population and tab.plots.history.envelope.series == 4
    # The result panel: the verified mean and interval, the exact value, the optimum and the fraction.
    v = entry.body["verification"]
    labels = {key: label.toolTip() or label.text() for key, label in tab.result_labels.items()}
    assert f"{v['mean']:.4g} \u00b1 {v['ci95']:.2g}" in tab.result_labels["verified"].text()
    assert tab.result_labels["exact"].isVisible()
    best = task.best_stationary_value()
    assert tab.result_labels["exact"].text() == f"{v['exact_value']:.4g} (best table {best:.4g})"
    assert f"{fraction_of_optimum(best, v['optimum']):.2%}" in labels["exact"]
    assert tab.result_labels["fraction"].text() == \
        f"{v['fraction_of_optimum']:.2%} (optimum {v['optimum']:.4g})"
    assert "Finished" in tab.stats.text() and "chained as entry #0" in tab.stats.text()
    run = tab.runs.runs[0]
    assert (run.preset, run.agents, run.episodes, run.verified) == \
        (CATALOGUE[task_id].title, 1, episodes, f"{v['mean']:.4g} \u00b1 {v['ci95']:.2g}")


def test_stopping_an_until_stopped_frozen_lake_run_chains_what_was_learned(qtbot: Any,
                                                                          tab: TrainingTab) -> None:
    pick(tab.form, "FrozenLake-v1")
    tab.form.until_stopped.setChecked(True)
    tab.form.seed.setValue(9)
    tab.start()
    assert tab.stop_button.isEnabled() and tab.progress.maximum() == 0  # busy: no end to show
    qtbot.waitUntil(lambda: tab.plots.history.through > 2000, timeout=60_000)
    assert "episodes/s" in tab.stats.text() and "epsilon" in tab.stats.text()
    with qtbot.waitSignal(tab.training_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    saved = blocker.args[0]
    ledger = tab.model.ctx.ledger
    assert len(ledger) == 1
    entry = ledger.entry(0)
    assert entry.body["env_id"] == "FrozenLake-v1"
    done = entry.body["training"]["episodes"]
    assert done >= 2000 and entry.body["training"]["hyperparameters"]["episodes"] is None
    assert tab.plots.history.through == done  # every episode reached the plots
    task = toy_text_task("FrozenLake-v1")
    hyper = recommended("FrozenLake-v1").replace(episodes=done, seed=9)
    reference = train_tabular(task.model(), task.horizon, hyper)
    assert saved[0].policy.actions == tuple(int(a) for a in reference.actions)
    same_figures(entry, saved[0].policy)
    assert tab.stats.text().startswith("Stopped") and "chained as entry #0" in tab.stats.text()
    assert tab.start_button.isEnabled() and not tab.stop_button.isEnabled()
    # FrozenLake's returns are 0 or 1: the view fits them, not a span of tens.
    low, high = tab.plots.reward.getPlotItem().getViewBox().viewRange()[1]
    assert -1.0 < low <= 0.0 and 1.0 <= high < 2.0


def test_closing_mid_run_chains_the_table(qtbot: Any, tab: TrainingTab) -> None:
    pick(tab.form, "FrozenLake8x8-v1")
    tab.form.until_stopped.setChecked(True)
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.points > 100, timeout=60_000)
    tab.shutdown()
    assert not tab.running and len(tab.model.ctx.ledger) == 1
    assert tab.model.ctx.ledger.entry(0).body["env_id"] == "FrozenLake8x8-v1"


def test_overlays_only_of_the_task_shown(qtbot: Any, tab: TrainingTab) -> None:
    table = tab.runs.table

    def train(task_id: str, episodes: int) -> None:
        pick(tab.form, task_id)
        if task_id == CYBER:
            tab.form.preset.setCurrentText("short-burst")
        tab.form.episodes.setValue(episodes)
        with qtbot.waitSignal(tab.training_finished, timeout=60_000):
            tab.start()

    def checkable(row: int) -> bool:
        item = table.item(row, 0)
        assert item is not None
        return bool(item.flags() & Qt.ItemFlag.ItemIsUserCheckable)

    def tick(row: int) -> None:
        item = table.item(row, 0)
        assert item is not None
        item.setCheckState(Qt.CheckState.Checked)

    train(CYBER, 100)
    train("CliffWalking-v1", 300)
    cyber, cliff = tab.runs.runs
    assert not checkable(0) and "another scale" in (table.item(0, 0).toolTip() if table.item(0, 0) else "")
    tick(0)  # refused: the cyber-defense returns are not drawn over CliffWalking's
    assert tab.runs.shown() == [] and cyber.overlay is None
    assert table.item(0, 0) is not None and table.item(0, 0).checkState() == Qt.CheckState.Unchecked
    tick(1)  # the same task: overlaid
    assert tab.runs.shown() == [cliff]
    train("CliffWalking-v1", 200)
    assert checkable(1) and tab.runs.shown() == [cliff]  # still the task shown
    train(CYBER, 100)
    assert not checkable(1) and not checkable(2) and tab.runs.shown() == []  # another task now
    assert checkable(0)
    tick(0)
    assert tab.runs.shown() == [cyber]


def test_a_cyber_run_after_a_task_run_is_unchanged(qtbot: Any, tab: TrainingTab) -> None:
    pick(tab.form, "CliffWalking-v1")
    with qtbot.waitSignal(tab.training_finished, timeout=60_000):
        tab.start()
    assert tab.result_labels["exact"].isVisible()
    pick(tab.form, CYBER)
    tab.form.preset.setCurrentText("short-burst")
    tab.form.episodes.setValue(200)
    tab.form.agents.setValue(2)
    with qtbot.waitSignal(tab.training_finished, timeout=60_000) as blocker:
        tab.start()
    entry = blocker.args[0][0].entry
    assert entry.body["env_id"] != "CliffWalking-v1" and entry.body["training"]["agents"] == 2
    assert entry.body["verification"].get("exact_value") is None
    assert tab.plots.population and not tab.result_labels["exact"].isVisible()
    assert "unseen episodes" in tab.result_labels["verified"].text()


def test_a_task_result_fits_the_window_at_1280x800(qtbot: Any, tmp_path: Path) -> None:
    """The task row and the exact value's row need no scrolling in the window a 1280x800 screen gives."""
    from PySide6.QtWidgets import QScrollArea

    from app.main_window import MainWindow

    window = MainWindow(workspace=tmp_path / "ws", config_dir=tmp_path / "cfg")
    qtbot.addWidget(window)
    window.resize(1264, 752)
    window.show()
    qtbot.waitExposed(window)
    tab = window.training_tab
    pick(tab.form, "CliffWalking-v1")
    with qtbot.waitSignal(tab.training_finished, timeout=60_000):
        tab.start()
    qtbot.wait(20)
    assert tab.result_labels["exact"].isVisible()
    area = window.tabs.widget(0)
    assert isinstance(area, QScrollArea)
    assert area.verticalScrollBar().maximum() == 0 and area.horizontalScrollBar().maximum() == 0
