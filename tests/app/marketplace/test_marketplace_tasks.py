"""The Marketplace with Gymnasium's toy-text tasks: rows, the detail panel's map, Replay and Compare.

The workspace (built once through the core) holds the best stationary table of each task, a variant
of FrozenLake 4x4's and a cyber-defense policy. Expected figures come from the core's task objects
and from Gymnasium played directly here, never from the views under test; the maps are checked on
their pixels as well as on what they say they drew.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage

from app.compare_dialog import CompareDialog
from app.marketplace_tab import MarketplaceTab
from app.marketplace_table import ALL_PRESETS
from app.model import AppModel
from app.replay_dialog import ReplayDialog, TaskReplayDialog
from app.task_map import (
    ARROW,
    DIRECTIONS,
    HEAD,
    KIND_COLOURS,
    SHAFT,
    GridView,
    taxi_observation,
)
from policyledger_core.policy import MYOPIC_ACTIONS, Policy, TaskPolicy
from policyledger_core.sim.config import preset
from policyledger_core.tasks.spec import task_info
from policyledger_core.tasks.toytext import toy_text_task
from policyledger_core.verify.suite import EVAL_SEED_BASE
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy
from tests.app.marketplace.test_marketplace_tab import (
    TIMEOUT_MS,
    button,
    patch_dialogs,
    select,
    select_and_wait,
    wait_idle,
    warnings_shown,  # noqa: F401 (a fixture)
)

TASK_IDS = ("FrozenLake-v1", "FrozenLake8x8-v1", "Taxi-v4", "CliffWalking-v1")
GRID_WORLDS = ("FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1")
VARIED = (0, 4, 14)
"""Observations of FrozenLake 4x4 (cells an episode acts in) where the variant's table differs."""
HOLE = 5
"""A hole of FrozenLake 4x4, where the variant differs too (no episode ever acts there)."""


def best_table(task_id: str) -> TaskPolicy:
    actions = toy_text_task(task_id).best_stationary().actions
    return TaskPolicy(task_info(task_id), tuple(int(a) for a in actions))


def variant() -> TaskPolicy:
    base = best_table("FrozenLake-v1")
    actions = list(base.actions)
    for obs in (*VARIED, HOLE):
        actions[obs] = (actions[obs] + 1) % 4
    return TaskPolicy(base.task, tuple(actions))


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A workspace with a policy of each task, a FrozenLake 4x4 variant and a cyber-defense policy."""
    root = tmp_path_factory.mktemp("tasks")
    ctx = Context.open(root / "ws", root / "cfg")
    for policy in (*(best_table(t) for t in TASK_IDS), variant(), Policy(preset("standard"), MYOPIC_ACTIONS)):
        save_policy(ctx, policy, None, {"kind": "added"})
    return root / "ws", root / "cfg"


@pytest.fixture
def tab(qtbot: Any, place: tuple[Path, Path], warnings_shown: list[str]) -> Iterator[MarketplaceTab]:  # noqa: F811
    widget = MarketplaceTab(AppModel(workspace=place[0], config_dir=place[1]))
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


def row_of(tab: MarketplaceTab, policy_hash: str) -> int:
    return next(i for i, r in enumerate(tab.visible_rows()) if r.policy_hash == policy_hash)


def show(qtbot: Any, tab: MarketplaceTab, policy: Policy | TaskPolicy) -> None:
    select_and_wait(qtbot, tab, row_of(tab, policy.hash))
    assert tab.detail.policy_hash == policy.hash


def image_of(view: GridView) -> QImage:
    return view.grab().toImage()


def dark_at(image: QImage, point: QPointF) -> bool:
    """The pixel is the arrows' ink (near black; an edge pixel is blended with the light cell)."""
    return QColor(image.pixel(int(point.x()), int(point.y()))).lightness() < 90


def dominant(image: QImage, rect: QRectF) -> str:
    """The most common colour inside a cell (away from its border)."""
    seen: Counter[str] = Counter()
    for x in range(int(rect.left()) + 3, int(rect.right()) - 2, 2):
        for y in range(int(rect.top()) + 3, int(rect.bottom()) - 2, 2):
            seen[QColor(image.pixel(x, y)).name()] += 1
    return seen.most_common(1)[0][0]


def point_in(rect: QRectF, move: tuple[int, int], along: float, across: float) -> QPointF:
    """A point of a cell, in cell widths from its centre along a move (rows, columns) and across it."""
    dr, dc = move
    size, centre = rect.width(), rect.center()
    return centre + QPointF(dc * size, dr * size) * along + QPointF(-dr * size, dc * size) * across


# -- the ranking table ----------------------------------------------------------------------------


def test_task_rows_are_grouped_and_filtered_by_their_task(tab: MarketplaceTab) -> None:
    rows = tab.visible_rows()
    assert len(rows) == 6
    titles = {task_info(t).title for t in TASK_IDS}
    assert {r.preset for r in rows} == titles | {"standard"}
    proxy = tab.proxy
    texts = {proxy.index(i, 2).data(): proxy.index(i, 2).data(Qt.ItemDataRole.ToolTipRole) for i in range(6)}
    assert set(texts) == {"FrozenLake 4x4", "FrozenLake 8x8", "Taxi", "CliffWalking", "standard"}
    assert texts["FrozenLake 8x8"].startswith("FrozenLake 8x8 (slippery): ")
    assert "'horizon': 200" in texts["FrozenLake 8x8"]
    combo = [tab.preset_combo.itemText(i) for i in range(tab.preset_combo.count())]
    assert combo == [ALL_PRESETS, *sorted(titles | {"standard"})]

    tab.preset_combo.setCurrentText("FrozenLake 4x4 (slippery)")
    shown = tab.visible_rows()
    assert {r.policy_hash for r in shown} == {best_table("FrozenLake-v1").hash, variant().hash}
    assert [proxy.index(i, 0).data() for i in range(2)] == ["1", "2"]  # ranked within the task
    task = toy_text_task("FrozenLake-v1")
    best = best_table("FrozenLake-v1")
    for i, r in enumerate(shown):  # the fraction is the exact value's (the policies' own)
        policy = best if r.policy_hash == best.hash else variant()
        fraction = task.expected_return(policy.actions) / task.optimum()
        assert r.fraction_of_optimum == pytest.approx(fraction)
        assert proxy.index(i, 4).data() == f"{fraction:.1%}"
        # FrozenLake's rewards lie in [0, 1]: the table shows the digits the detail panel shows.
        assert proxy.index(i, 3).data() == f"{r.mean:.4f} \u00b1 {r.ci95:.4f}"
        assert proxy.index(i, 3).data(Qt.ItemDataRole.ToolTipRole).startswith(
            f"95% CI [{r.interval.low:.4f}, {r.interval.high:.4f}]")
        assert proxy.index(i, 4).data(Qt.ItemDataRole.ToolTipRole) == (
            f"exact optimum {task.optimum():.4f} (finite-horizon value iteration)")
    tab.preset_combo.setCurrentText("Taxi")
    assert [r.policy_hash for r in tab.visible_rows()] == [best_table("Taxi-v4").hash]
    taxi = tab.visible_rows()[0]
    assert proxy.index(0, 3).data() == f"{taxi.mean:.2f} \u00b1 {taxi.ci95:.2f}"  # whole-number rewards
    tab.preset_combo.setCurrentText(ALL_PRESETS)
    assert len(tab.visible_rows()) == 6


# -- the detail panel -----------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", GRID_WORLDS)
def test_grid_world_detail_shows_the_figures_and_the_table_as_a_map(qtbot: Any, tab: MarketplaceTab,
                                                                    task_id: str) -> None:
    policy, task = best_table(task_id), toy_text_task(task_id)
    show(qtbot, tab, policy)
    detail = tab.detail
    assert detail.decisions.currentWidget() is detail.task_map and detail.task_map.isVisible()
    assert not detail.heatmap.isVisible()
    row = tab.current_row()
    assert row is not None

    exact, optimum, best = task.expected_return(policy.actions), task.optimum(), task.best_stationary_value()
    digits = 4 if abs(optimum) <= 1 else 2
    f = detail.fields
    assert f["reward"].text().startswith(f"{row.mean:.{digits}f} \u00b1 {row.ci95:.{digits}f} (95% CI, 1000 ")
    assert f["expected"].text().startswith(f"{exact:.{digits}f} (exact")
    assert f"optimum {optimum:.{digits}f}" in f["fraction"].text()
    assert f["best"].text().startswith(f"{best:.{digits}f} (") and f["best"].isVisible()
    for baseline in task.baselines().values():
        assert f"{baseline.name} {baseline.value:.{digits}f}" in f["baselines"].text()
    bars = detail.task_result.bars
    assert bars is not None
    assert list(bars.values) == pytest.approx([row.mean, exact, optimum, best,
                                               *(b.value for b in task.baselines().values())])
    note = detail.best_note.text()
    if best < optimum - 1e-9:  # FrozenLake: no table reaches the time-dependent optimum
        assert "no table can" in note and f"{best / optimum:.2%} of the optimum" in note
    else:
        assert "reaches the optimum" in note

    view = detail.task_map.view
    grid = task.grid()
    model = task.model()
    acting = model.initial > 0
    for obs in range(task.n_observations):  # acted on: the start, or reached without the episode ending
        for a in range(task.n_actions):
            part = model.outcomes(obs, a)
            for nxt, ends in zip(model.next_states[part], model.terminated[part], strict=True):
                acting[nxt] |= not ends
    arrows = {grid.positions[obs]: policy.actions[obs] for obs in range(task.n_observations) if acting[obs]}
    assert view.arrows() == arrows
    terminal = {(r, c) for r in range(grid.rows) for c in range(grid.cols)} - set(arrows)
    assert {grid.kind(*cell) for cell in terminal} == ({"hole", "goal"} if task.family == "frozenlake"
                                                       else {"cliff", "goal"})

    image = image_of(view)
    for r in range(grid.rows):
        for c in range(grid.cols):  # every cell drawn by its kind
            assert dominant(image, view.cell_rect(r, c)) == QColor(KIND_COLOURS[grid.kind(r, c)]).name()
    assert QColor(ARROW).lightness() < 90 and all(QColor(c).lightness() > 180 for c in
                                                  (KIND_COLOURS["start"], KIND_COLOURS["frozen"],
                                                   KIND_COLOURS["floor"]))
    for (r, c), action in arrows.items():  # the arrow's head points the table's way
        rect, move = view.cell_rect(r, c), DIRECTIONS[task.action_names[action]]
        assert dark_at(image, point_in(rect, move, 0.5 * (HEAD[0] + HEAD[1]) - 0.05, 0.08))
        assert dark_at(image, point_in(rect, move, 0.5 * (SHAFT[0] + SHAFT[1]), 0.0))
        assert not dark_at(image, point_in(rect, move, -0.25, 0.12))  # no head at the tail
        assert not dark_at(image, point_in(rect, move, 0.2, 0.3))  # nor beside the head
    hole_or_cliff = next(cell for cell in terminal if grid.kind(*cell) != "goal")
    tip = view.tooltip_at(*hole_or_cliff)
    assert "no action" in tip and grid.kind(*hole_or_cliff) in tip
    start = grid.positions[int(model.initial.argmax())]
    start_obs = grid.positions.index(start)
    action = view_action(task.action_names[policy.actions[start_obs]])
    label = task.observation_label(start_obs)
    assert view.tooltip_at(*start) == f"observation {start_obs}: {label}\naction: {action}"

    shares = detail.task_share.bars
    assert shares is not None and shares.labels == list(task.action_names)
    assert shares.values.sum() == pytest.approx(100.0)


def view_action(name: str) -> str:
    arrow = {(0, -1): "\u2190", (0, 1): "\u2192", (-1, 0): "\u2191", (1, 0): "\u2193"}[DIRECTIONS[name]]
    return f"{arrow} {name}"


def test_taxi_detail_shows_its_table_per_passenger_and_destination(qtbot: Any, tab: MarketplaceTab) -> None:
    policy, task = best_table("Taxi-v4"), toy_text_task("Taxi-v4")
    show(qtbot, tab, policy)
    panel = tab.detail.task_map
    assert tab.detail.decisions.currentWidget() is panel
    assert panel.taxi_row.isVisible()
    passengers = [panel.passenger_combo.itemText(i) for i in range(panel.passenger_combo.count())]
    assert passengers == ["at R", "at G", "at Y", "at B", "in the taxi"]
    destinations = [panel.destination_combo.itemText(i) for i in range(panel.destination_combo.count())]
    assert destinations == list("RGYB")
    grid = task.grid()
    letters = ["R", "G", "Y", "B"]
    for passenger, destination in ((0, 1), (2, 3), (4, 0), (4, 2)):
        panel.choose(passenger, destination)
        arrows = panel.view.arrows()
        assert len(arrows) == 25
        where = "in the taxi" if passenger == 4 else f"at {letters[passenger]}"
        for (r, c), action in arrows.items():
            obs = taxi_observation(grid, r, c, passenger, destination)
            assert task.observation_label(obs) == (f"taxi at row {r}, column {c}; passenger {where}; "
                                                   f"destination {letters[destination]}")
            assert action == policy.actions[obs]
        assert letters[destination] in panel.note.text()
    panel.choose(0, 1)  # the passenger waits at R: the table picks it up there
    assert panel.view.arrows()[grid.pads[0]] == task.action_names.index("pickup")
    panel.choose(4, 1)  # in the taxi, at G the destination: drop off
    assert panel.view.arrows()[grid.pads[1]] == task.action_names.index("dropoff")
    panel.choose(2, 2)  # already delivered: never acted on
    assert panel.view.arrows() == {} and "already at Y" in panel.note.text()


def test_the_cyber_views_come_back_after_a_task_policy(qtbot: Any, tab: MarketplaceTab) -> None:
    show(qtbot, tab, best_table("FrozenLake8x8-v1"))
    show(qtbot, tab, Policy(preset("standard"), MYOPIC_ACTIONS))
    detail = tab.detail
    assert detail.decisions.currentWidget() is detail.heatmap and detail.heatmap.isVisible()
    assert detail.heatmap.data.shape == (18, 4)
    assert not detail.fields["best"].isVisible() and not detail.fields["baselines"].isVisible()
    assert detail.results.currentWidget() is detail.result_plot
    assert detail.result_box.title() == "Verified mean return against the references"
    assert detail.fields["reward"].toolTip() == ""


# -- replay ---------------------------------------------------------------------------------------


def gymnasium_episode(task_id: str, actions: tuple[int, ...], seed: int) -> tuple[list[int], float]:
    """The observations and return of one episode played here with Gymnasium directly."""
    spec = task_info(task_id).spec
    kwargs: dict[str, Any] = spec.kwargs_dict()
    if gym.spec(spec.env_id).max_episode_steps is None:
        kwargs["max_episode_steps"] = spec.horizon
    env = gym.make(spec.env_id, **kwargs)
    assert env.spec is not None and env.spec.max_episode_steps == spec.horizon
    obs, _ = env.reset(seed=seed)
    seen, total, done = [int(obs)], 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(actions[int(obs)])
        seen.append(int(obs))
        total += float(reward)
        done = terminated or truncated
    env.close()
    return seen, total


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_replay_dialog_plays_gymnasiums_episode_on_the_map(qtbot: Any, tab: MarketplaceTab,
                                                           task_id: str) -> None:
    policy, task = best_table(task_id), toy_text_task(task_id)
    select(tab, row_of(tab, policy.hash))
    button(tab, "replayButton").click()
    wait_idle(qtbot, tab)
    dialog = tab.replay_dialog
    assert isinstance(dialog, TaskReplayDialog) and dialog.isVisible()
    grid = task.grid()
    for offset in (0, 3):
        dialog.offset.setValue(offset)
        assert dialog.seed == EVAL_SEED_BASE + offset
        observations, total = gymnasium_episode(task_id, policy.actions, dialog.seed)
        steps = len(observations) - 1
        assert dialog.position == 0 and dialog.map.agent == grid.positions[observations[0]]
        dialog.step_button.click()
        assert dialog.table.rowCount() == 1 and dialog.map.agent == grid.positions[observations[1]]
        dialog.play_to_end()
        assert dialog.position == steps == dialog.table.rowCount()
        assert dialog.total == total
        assert [s.next_observation for s in dialog.steps] == observations[1:]
        assert dialog.map.agent == grid.positions[observations[-1]]
        assert dialog.map.path == [grid.positions[o] for o in observations]
        summary = dialog.summary.text()
        assert f"Step {steps} of {steps}" in summary and f"return {total:g}" in summary
        assert not dialog.step_button.isEnabled()
        assert dialog.table.item(steps - 1, dialog.table.columnCount() - 1).text() == f"{total:g}"
        replayed = task.replay(policy.actions, [dialog.seed])  # what the verification replays
        assert (float(replayed.returns[0]), int(replayed.steps[0])) == (total, steps)
        dialog.previous_button.click()  # one step back
        assert dialog.position == steps - 1 == dialog.table.rowCount()
        assert dialog.map.agent == grid.positions[observations[-2]] and dialog.step_button.isEnabled()
    if task.family == "taxi":
        dialog.reset()
        _, _, passenger, destination = _taxi(observations_of(dialog)[0])
        letters = ["R", "G", "Y", "B"]
        assert dialog.map.destination == grid.pads[destination]
        assert dialog.map.passenger == (grid.pads[passenger] if passenger < 4 else None)
        assert f"destination: {letters[destination]}" in dialog.situation.text()
    dialog.timer.setInterval(1)
    dialog.reset()
    dialog.play_button.click()
    qtbot.waitUntil(lambda: dialog.episode_over, timeout=TIMEOUT_MS)
    assert not dialog.timer.isActive()


def observations_of(dialog: TaskReplayDialog) -> list[int]:
    assert dialog.episode is not None
    return dialog.episode.observations(dialog.position)


def _taxi(observation: int) -> tuple[int, int, int, int]:
    rest, destination = divmod(observation, 4)
    rest, passenger = divmod(rest, 5)
    row, col = divmod(rest, 5)
    return row, col, passenger, destination


def test_replay_of_a_cyber_policy_is_still_the_cyber_dialog(qtbot: Any, tab: MarketplaceTab) -> None:
    select(tab, row_of(tab, Policy(preset("standard"), MYOPIC_ACTIONS).hash))
    button(tab, "replayButton").click()
    wait_idle(qtbot, tab)
    assert isinstance(tab.replay_dialog, ReplayDialog)


# -- compare --------------------------------------------------------------------------------------


def test_compare_two_frozenlake_tables_lists_exactly_where_they_differ(qtbot: Any,
                                                                      tab: MarketplaceTab) -> None:
    first, second = best_table("FrozenLake-v1"), variant()
    select(tab, row_of(tab, first.hash), row_of(tab, second.hash))
    button(tab, "compareButton").click()
    wait_idle(qtbot, tab)
    dialog = tab.compare_dialog
    assert isinstance(dialog, CompareDialog) and dialog.isVisible()
    order = [r.policy_hash for r in tab.selected_rows()]
    policies = [first if h == first.hash else second for h in order]
    task = toy_text_task("FrozenLake-v1")
    assert dialog.differing == sorted(VARIED)  # not the hole: no episode acts there
    table = dialog.differing_rows()
    assert [line[0] for line in table] == [task.observation_label(obs) for obs in sorted(VARIED)]
    for line, obs in zip(table, sorted(VARIED), strict=True):
        names = [task.action_names[p.actions[obs]] for p in policies]
        assert [cell.split(" ")[-1] for cell in line[1:]] == names
    note = dialog.elsewhere_note
    assert note.isVisible() and "1 observation no episode acts on" in note.text()
    box_titles = [box.title() for box in dialog.findChildren(type(tab.detail.result_box))]
    assert "Decisions that differ (3 of 11 observations the tables act on)" in box_titles

    [pair] = dialog.paired.pairs
    assert pair.result is not None
    a, b = tab.selected_rows()
    assert dialog.paired.means == [a.mean, b.mean]
    assert pair.result.mean_diff == pytest.approx(a.mean - b.mean)
    rows = [dialog.metrics.verticalHeaderItem(r).text() for r in range(dialog.metrics.rowCount())]
    exact_row = rows.index("Exact value")
    for col, policy in enumerate(policies):
        assert dialog.metrics.item(exact_row, col).text() == f"{task.expected_return(policy.actions):.4f}"


def test_compare_refuses_policies_of_different_tasks(qtbot: Any, tab: MarketplaceTab) -> None:
    select(tab, row_of(tab, best_table("FrozenLake-v1").hash), row_of(tab, best_table("Taxi-v4").hash))
    tab.compare_selected()
    wait_idle(qtbot, tab)
    assert tab.compare_dialog is None
    assert "different tasks" in tab.status.text()


# -- add a policy file ----------------------------------------------------------------------------


def test_a_task_policy_file_can_be_added(qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        warnings_shown: list[str]) -> None:  # noqa: F811
    widget = MarketplaceTab(AppModel(workspace=tmp_path / "ws", config_dir=tmp_path / "cfg"))
    qtbot.addWidget(widget)
    try:
        policy = best_table("CliffWalking-v1")
        path = tmp_path / "cliff.json"
        path.write_text(json.dumps(policy.to_dict()))
        patch_dialogs(monkeypatch, path)
        button(widget, "addPolicyButton").click()
        wait_idle(qtbot, widget)
        assert warnings_shown == []
        assert [r.policy_hash for r in widget.visible_rows()] == [policy.hash]
        assert widget.visible_rows()[0].preset == "CliffWalking"
    finally:
        widget.shutdown()
