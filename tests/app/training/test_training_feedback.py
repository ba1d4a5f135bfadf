"""The Training tab's feedback: resets, messages, progress, stop sequence, legends, layout, export."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractSpinBox, QFileDialog

from app import settings
from app.model import AppModel
from app.training_form import TrainingForm
from app.training_tab import TrainingTab


@pytest.fixture
def tab(qtbot, tmp_path: Path) -> Iterator[TrainingTab]:
    model = AppModel(tmp_path / "ws", tmp_path / "cfg")
    widget = TrainingTab(model)
    qtbot.addWidget(widget)
    widget.form.preset.setCurrentText("short-burst")
    widget.form.seed.setValue(3)
    yield widget
    widget._training.shutdown()  # a failed test leaves no run behind


def _run(qtbot, tab: TrainingTab, episodes: int = 200, agents: int = 1) -> None:
    tab.form.episodes.setValue(episodes)
    tab.form.agents.setValue(agents)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        tab.start()


def test_opening_another_workspace_resets_every_view(qtbot, tab: TrainingTab, tmp_path: Path) -> None:
    _run(qtbot, tab)
    assert tab.result_labels["entry"].text().startswith("#0")
    tab.model.open_workspace(tmp_path / "other")
    assert all(label.text() == "-" for label in tab.result_labels.values())
    assert tab.plots.points == 0
    assert tab.stats.text() == "Ready."
    assert tab.progress.value() <= 0


def test_read_only_refusal_clears_after_a_repair(qtbot, tab: TrainingTab, monkeypatch) -> None:
    broken = [True]
    monkeypatch.setattr(type(tab.model.ctx.ledger), "read_only", property(lambda _self: broken[0]))
    tab.start()
    assert "read-only" in tab.form.error.text()
    broken[0] = False
    tab.model.notify_changed(None)
    assert tab.form.error.text() == ""


def test_field_error_clears_on_edit_and_keeps_the_arrows(tab: TrainingTab) -> None:
    box = tab.form.fields["epsilon_end"]
    tab.form.fields["epsilon_start"].setValue(0.1)
    box.setValue(0.5)
    tab.start()
    assert tab.form.error.text() and tab.form.invalid_field() == "epsilon_end"
    assert box.styleSheet() == ""  # a style sheet on the box itself drops its arrows
    assert box.buttonSymbols() != QAbstractSpinBox.ButtonSymbols.NoButtons
    box.setValue(0.05)
    assert tab.form.error.text() == "" and tab.form.invalid_field() is None


def test_error_wording_uses_the_form_labels(tab: TrainingTab) -> None:
    tab.form.fields["epsilon_start"].setValue(0.1)
    tab.form.fields["epsilon_end"].setValue(0.5)
    tab.start()
    text = tab.form.error.text()
    assert "epsilon_end" not in text and "Epsilon end" in text


def test_progress_is_idle_after_an_until_stopped_run(qtbot, tab: TrainingTab) -> None:
    tab.form.until_stopped.setChecked(True)
    tab.start()
    assert tab.progress.maximum() == 0  # busy while running
    qtbot.waitUntil(lambda: tab.plots.points > 100, timeout=30_000)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        tab.stop()
    assert tab.progress.maximum() > 0
    assert not tab.plots._timer.isActive()


def test_progress_is_idle_after_a_failed_run(qtbot, tab: TrainingTab) -> None:
    tab.form.until_stopped.setChecked(True)
    tab.start()
    tab._on_task_failed(RuntimeError("boom"))
    assert tab.progress.maximum() > 0 and not tab.plots._timer.isActive()


def test_stopping_a_population_run_gives_one_clear_sequence(qtbot, tab: TrainingTab) -> None:
    tab.form.until_stopped.setChecked(True)
    tab.form.agents.setValue(4)
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.points > 50, timeout=30_000)
    texts: list[str] = []
    real = tab.stats.setText

    def record(text: str) -> None:
        texts.append(text)
        real(text)

    tab.stats.setText = record  # type: ignore[method-assign]
    qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert not tab.stop_button.isEnabled()
    assert "stopping" in tab.stats.text().lower()
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        pass
    assert not tab.stop_button.isEnabled()
    assert texts and "stopping" in texts[0].lower()
    assert not any(t.startswith("episode ") for t in texts)
    assert any("verifying" in t.lower() for t in texts)


def test_legends_sit_outside_the_data(qtbot, tab: TrainingTab) -> None:
    tab.resize(1200, 700)
    tab.show()
    qtbot.waitExposed(tab)
    _run(qtbot, tab, episodes=60, agents=3)
    for plot in (tab.plots.reward, tab.plots.epsilon):
        item = plot.getPlotItem()
        legend = item.legend
        assert legend is not None
        view = item.getViewBox()
        assert legend.parentItem() is not view and legend.scene() is plot.scene()
        assert legend.isVisible() and legend.sceneBoundingRect().height() > 0
        assert not legend.sceneBoundingRect().intersects(view.sceneBoundingRect())
        assert plot.sceneRect().contains(legend.sceneBoundingRect())  # all of it shown
    names = [label.text for _sample, label in tab.plots.reward.getPlotItem().legend.items]
    assert any("95% CI of mean" in n for n in names)
    tab.smoothing.setValue(50)
    assert "0.50" in tab.smoothing_label.text()


def test_layout_does_not_jump(qtbot, tab: TrainingTab) -> None:
    tab.resize(1200, 700)
    tab.show()
    qtbot.waitExposed(tab)
    width = tab.form_column.sizeHint().width()
    start_y = tab.start_button.mapTo(tab, tab.start_button.rect().topLeft()).y()
    tab.form.fields["epsilon_start"].setValue(0.1)
    tab.form.fields["epsilon_end"].setValue(0.5)
    tab.start()
    qtbot.wait(50)
    assert tab.start_button.mapTo(tab, tab.start_button.rect().topLeft()).y() == start_y
    tab.form.fields["epsilon_end"].setValue(0.05)
    _run(qtbot, tab)
    qtbot.wait(50)
    assert tab.form_column.sizeHint().width() == width


def test_status_says_already_recorded_and_plus_minus(qtbot, tab: TrainingTab) -> None:
    _run(qtbot, tab)
    assert "±" in tab.result_labels["verified"].text()
    _run(qtbot, tab)  # the same seed learns the same policy
    assert "already recorded as entry #0" in tab.stats.text()
    assert "chained as entry" not in tab.stats.text()


def test_form_state_includes_until_stopped(qtbot) -> None:
    form = TrainingForm()
    qtbot.addWidget(form)
    form.until_stopped.setChecked(True)
    state = form.state()
    assert json.loads(state)["until_stopped"] is True
    other = TrainingForm()
    qtbot.addWidget(other)
    other.until_stopped.setChecked(False)
    other.restore(state)
    assert other.until_stopped.isChecked()


def test_plot_export_csv_confirms_and_remembers(qtbot, tab: TrainingTab, tmp_path: Path,
                                                 monkeypatch) -> None:
    assert not tab.export_csv_button.isEnabled() and not tab.export_png_button.isEnabled()
    _run(qtbot, tab, episodes=50, agents=2)
    assert tab.export_csv_button.isEnabled() and tab.export_png_button.isEnabled()
    out = tmp_path / "out"
    out.mkdir()
    starts: list[str] = []

    def pick(_parent, _title, start, _filter):
        starts.append(start)
        return str(out / "plot.csv"), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", pick)
    qtbot.mouseClick(tab.export_csv_button, Qt.MouseButton.LeftButton)
    assert starts[0].startswith(str(tab.model.workspace_root))
    assert "plot.csv" in tab.stats.text()
    with (out / "plot.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0][:5] == ["first_episode", "last_episode", "episodes", "kind", "return_min"]
    assert "band_low" in rows[0] and "best_max" in rows[0]
    assert len(rows) == 51
    assert settings.last_folder("plots", tmp_path, tab.model.ctx.config_dir) == str(out)
    qtbot.mouseClick(tab.export_csv_button, Qt.MouseButton.LeftButton)
    assert starts[1].startswith(str(out))


def test_open_workspace_in_the_window_resets_the_training_view(qtbot, tmp_path: Path,
                                                              monkeypatch) -> None:
    from app.main_window import MainWindow

    window = MainWindow(workspace=tmp_path / "ws", config_dir=tmp_path / "cfg")
    qtbot.addWidget(window)
    tab = window.training_tab
    tab.form.preset.setCurrentText("short-burst")
    _run(qtbot, tab, episodes=100)
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_args: str(other))
    window.open_workspace()
    assert window.model.workspace_root == other
    assert tab.result_labels["entry"].text() == "-" and tab.plots.empty
    assert tab.stats.text() == "Ready."


def test_the_window_keeps_until_stopped_in_the_form_state_only(qtbot, tmp_path: Path) -> None:
    from app.main_window import MainWindow

    config = tmp_path / "cfg"
    window = MainWindow(workspace=tmp_path / "ws", config_dir=config)
    qtbot.addWidget(window)
    window.training_tab.form.until_stopped.setChecked(True)
    window.close()
    ini = (config / settings.UI_FILE).read_text()
    assert "until_stopped" not in ini.replace('\\"until_stopped\\"', "")
    assert json.loads(str(settings.read("training/form", config)))["until_stopped"] is True
