"""The Marketplace tab: ranking table, detail panel, bundles through the file dialogs, compare, replay.

Workspaces are built through the core (``publish.save_policy``); file dialogs
and message boxes are patched, so every test runs unattended and offscreen.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox, QProgressBar, QPushButton, QStyle

from app.marketplace_tab import ALL_PRESETS, MarketplaceTab
from app.marketplace_table import COLUMNS
from app.model import AppModel
from app.policy_detail import AXIS_TEXT, HEATMAP_OBS, HEATMAP_ROWS, RESULT_LABELS, observation_name
from policyledger_core.ledger import tlog
from policyledger_core.policy import MYOPIC_ACTIONS, TERMINAL_OBSERVATIONS, Policy
from policyledger_core.sim import dynamics as dyn
from policyledger_core.sim.config import preset
from policyledger_core.sim.environment import CyberDefenseEnv
from policyledger_core.verify import comparison
from policyledger_core.verify.suite import BASELINES, EVAL_SEED_BASE
from policyledger_core.workspace import audit
from policyledger_core.workspace.bundles import export_bundle
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import save_policy
from policyledger_core.workspace.reproduced import pending
from tests.app.conftest import HeldReplay

TIMEOUT_MS = 20_000
FREE = [obs for obs in range(dyn.N_OBS) if obs not in TERMINAL_OBSERVATIONS]


def variant(k: int, preset_name: str = "standard") -> Policy:
    """The myopic policy with three non-terminal actions changed (k = 0: unchanged)."""
    actions = list(MYOPIC_ACTIONS)
    for obs in FREE[3 * k:3 * k + 3] if k else []:
        actions[obs] = (actions[obs] + 1) % dyn.N_ACTIONS
    return Policy(preset(preset_name), tuple(actions))


def snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``roots`` with its bytes (None for a folder).

    The UI settings (``ui.ini``: the folder a file dialog last used) are no domain data: left out.
    """
    return {f"{n}:{p.relative_to(root)}": None if p.is_dir() else p.read_bytes()
            for n, root in enumerate(roots) if root.exists() for p in sorted(root.rglob("*"))
            if p.name != "ui.ini"}


@pytest.fixture
def warnings_shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Message boxes never block a test: each warning's text is recorded instead."""
    shown: list[str] = []

    def warning(_parent: Any, _title: str, text: str, *args: Any) -> QMessageBox.StandardButton:
        shown.append(text)
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", warning)
    return shown


@pytest.fixture
def model(tmp_path: Path) -> AppModel:
    app_model = AppModel(workspace=tmp_path / "ws", config_dir=tmp_path / "cfg")
    for policy in (variant(0), variant(1), variant(2), variant(0, "short-burst")):
        save_policy(app_model.ctx, policy, None, {"kind": "added"})
    return app_model


def make_tab(qtbot: Any, app_model: AppModel) -> MarketplaceTab:
    widget = MarketplaceTab(app_model)
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    return widget


@pytest.fixture
def tab(qtbot: Any, model: AppModel, warnings_shown: list[str]) -> Iterator[MarketplaceTab]:
    widget = make_tab(qtbot, model)
    yield widget
    widget.shutdown()


def select(tab: MarketplaceTab, *rows: int) -> None:
    tab.table.clearSelection()
    flags = tab.table.selectionModel().SelectionFlag
    for row in rows:
        tab.table.selectionModel().select(tab.proxy.index(row, 0), flags.Select | flags.Rows)
    tab.table.selectionModel().setCurrentIndex(tab.proxy.index(rows[0], 0), flags.NoUpdate)


def patch_dialogs(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))


def button(tab: MarketplaceTab, name: str) -> QPushButton:
    found = tab.findChild(QPushButton, name)
    assert found is not None, name
    return found


def wait_idle(qtbot: Any, tab: MarketplaceTab) -> None:
    """Until the tab's action and its detail panel's replay (both in the background) have ended."""
    qtbot.waitUntil(lambda: not tab.busy, timeout=TIMEOUT_MS)


def select_and_wait(qtbot: Any, tab: MarketplaceTab, *rows: int) -> None:
    """Select, then wait for the detail panel (loaded and replayed in the background)."""
    select(tab, *rows)
    qtbot.waitUntil(lambda: not tab.loading_detail, timeout=TIMEOUT_MS)


def record_callback_threads(monkeypatch: pytest.MonkeyPatch, tab: MarketplaceTab,
                            name: str) -> list[threading.Thread]:
    """Wrap the tab's result handler ``name``: the threads it ran in, in order.

    The worker's signals go to bound methods of the tab (GUI thread) that call the
    handler; a lambda or partial receiver would run it in the worker thread instead.
    """
    threads: list[threading.Thread] = []
    original = getattr(tab, name)

    def handler(*args: Any) -> None:
        threads.append(threading.current_thread())
        original(*args)

    monkeypatch.setattr(tab, name, handler)
    return threads


# -- table and detail -----------------------------------------------------------------------------


def test_table_shows_rows_in_rank_order(tab: MarketplaceTab, model: AppModel) -> None:
    ranking = model.ranking()
    assert len(ranking) == 4
    # "All presets": grouped by preset (in name order), each in its own rank order, ranked within it
    grouped = sorted(ranking, key=lambda r: (r.preset or "", r.rank))
    assert [r.policy_hash for r in tab.visible_rows()] == [r.policy_hash for r in grouped]
    proxy = tab.proxy
    assert [proxy.index(i, 0).data() for i in range(4)] == ["1", "1", "2", "3"]
    assert proxy.index(0, 1).data(Qt.ItemDataRole.ToolTipRole) == grouped[0].policy_hash
    assert proxy.index(0, 1).data() == grouped[0].policy_hash[:12]
    assert {proxy.index(i, 5).data() for i in range(4)} == {"you"}
    assert {proxy.index(i, 6).data() for i in range(4)} == {"added"}

    tab.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)  # numeric sort on the verified reward
    assert [r.mean for r in tab.visible_rows()] == sorted(r.mean for r in ranking)
    tab.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    tab.preset_combo.setCurrentText("short-burst")
    assert [r.preset for r in tab.visible_rows()] == ["short-burst"]
    tab.preset_combo.setCurrentText(ALL_PRESETS)
    assert len(tab.visible_rows()) == 4


def test_table_refreshes_when_the_ledger_changes(tab: MarketplaceTab, model: AppModel) -> None:
    select(tab, 1)
    kept = tab.current_row()
    save_policy(model.ctx, variant(3), None, {"kind": "added"})
    model.notify_changed()
    assert len(tab.visible_rows()) == 5
    assert tab.current_row() == next(r for r in tab.visible_rows() if r.policy_hash == kept.policy_hash)


def test_selecting_a_row_fills_the_detail_panel(qtbot: Any, tab: MarketplaceTab, model: AppModel) -> None:
    select_and_wait(qtbot, tab, 0)
    row = tab.visible_rows()[0]
    detail = tab.detail
    assert detail.policy_hash == row.policy_hash
    policy = model.ctx.store.get(row.policy_hash)
    heatmap = detail.heatmap
    assert heatmap.data.shape == (18, 4)
    np.testing.assert_array_equal(heatmap.data, policy.action_array()[HEATMAP_OBS])
    assert heatmap.image.image is not None and heatmap.image.image.shape == (18, 4)
    assert heatmap.cells[0][0].toPlainText() in ("IGN", "MON", "RATE", "BLOCK", "ISO")
    assert detail.share.values.sum() == pytest.approx(100.0)
    assert len(detail.result.values) == 2 + 7  # the policy, the optimum and seven baselines
    assert detail.result.values[0] == pytest.approx(row.mean)
    assert detail.result.values[1] == pytest.approx(row.optimum)
    assert "bits" in detail.entropy.text()
    assert detail.fields["publisher"].text() == "you"

    select_and_wait(qtbot, tab, 3)
    assert detail.policy_hash == tab.visible_rows()[3].policy_hash


def test_a_missing_policy_file_is_said_not_raised(qtbot: Any, tab: MarketplaceTab, model: AppModel) -> None:
    row = tab.visible_rows()[2]
    model.ctx.store.path_of(row.policy_hash).unlink()
    select_and_wait(qtbot, tab, 2)
    assert tab.detail.policy_hash is None
    assert "file missing" in tab.detail.message.text() and "file missing" in tab.status.text()
    select_and_wait(qtbot, tab, 1, 2)
    tab.compare_selected()
    wait_idle(qtbot, tab)
    assert tab.compare_dialog is None
    assert "file missing" in tab.status.text()


def test_buttons_have_mnemonics_and_the_table_takes_focus(tab: MarketplaceTab) -> None:
    for name in ("exportButton", "importButton", "addPolicyButton", "reverifyButton", "compareButton",
                 "replayButton"):
        assert "&" in button(tab, name).text(), name
    assert tab.objectName() == "marketplaceTab"
    assert tab.table.objectName() == "marketplaceTable"
    assert tab.table.focusPolicy() == Qt.FocusPolicy.StrongFocus
    select(tab, 0)
    assert not button(tab, "compareButton").isEnabled()
    select(tab, 0, 1)
    assert button(tab, "compareButton").isEnabled()
    select(tab, 0, 1, 2, 3)
    assert button(tab, "compareButton").isEnabled()


def left_axis_texts(plot: Any) -> list[str]:
    """The tick labels a plot's left axis draws as laid out now (pyqtgraph drops one that does not fit)."""
    image = QImage(16, 16, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _axis, _ticks, texts = plot.getAxis("left").generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _rect, _flags, text in texts]


def test_charts_name_every_bar_from_the_first_paint(qtbot: Any, tab: MarketplaceTab) -> None:
    tab.resize(1440, 860)
    tab.show()
    qtbot.waitExposed(tab)
    select_and_wait(qtbot, tab, 0)
    detail = tab.detail
    assert ("this policy", "optimum", *BASELINES) == RESULT_LABELS
    assert left_axis_texts(detail.result_plot) == list(RESULT_LABELS)
    assert left_axis_texts(detail.share_plot) == list(dyn.ACTION_NAMES)
    assert left_axis_texts(detail.heatmap.plot) == HEATMAP_ROWS
    for plot in (detail.result_plot, detail.share_plot):
        assert plot.getAxis("left").textPen().color() == QColor(AXIS_TEXT)  # dark on white


def test_the_table_gets_room_and_every_column_is_reachable(qtbot: Any, tab: MarketplaceTab) -> None:
    tab.resize(1440, 860)
    tab.show()
    qtbot.waitExposed(tab)
    left, right = tab.splitter.sizes()
    assert 0.42 <= left / (left + right) <= 0.48
    assert right >= tab.detail.minimumSizeHint().width()
    table, header = tab.table, tab.table.horizontalHeader()
    horizontal = Qt.Orientation.Horizontal
    for column in range(len(COLUMNS)):
        text = tab.proxy.headerData(column, horizontal)
        assert max(len(line) for line in text.split("\n")) <= 9, text
        assert tab.proxy.headerData(column, horizontal, Qt.ItemDataRole.ToolTipRole)
        assert header.sectionSize(column) >= table.sizeHintForColumn(column), text  # no value cut short
        mark = 0 if column == header.sortIndicatorSection() else table.style().pixelMetric(
            QStyle.PixelMetric.PM_HeaderMarkSize)  # only the sorted column's header shows the arrow
        assert header.sectionSize(column) >= header.sectionSizeHint(column) - mark, text
    assert table.horizontalScrollBar().maximum() + table.viewport().width() >= header.length()
    row = tab.visible_rows()[0]
    assert tab.proxy.index(0, 7).data() == row.timestamp[:10]
    assert tab.proxy.index(0, 7).data(Qt.ItemDataRole.ToolTipRole).startswith(row.timestamp[:10])


# -- bundles --------------------------------------------------------------------------------------


def test_export_then_import_into_another_workspace(qtbot: Any, tab: MarketplaceTab, model: AppModel,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   warnings_shown: list[str]) -> None:
    select(tab, 0)
    row = tab.current_row()
    bundle = tmp_path / "shared" / "policy.bundle.json"
    bundle.parent.mkdir()
    patch_dialogs(monkeypatch, bundle)
    button(tab, "exportButton").click()
    wait_idle(qtbot, tab)
    assert bundle.read_bytes() == export_bundle(model.ctx, row.policy_hash)
    assert warnings_shown == [] and "Exported" in tab.status.text()

    other = AppModel(workspace=tmp_path / "ws2", config_dir=tmp_path / "cfg2")
    other_tab = make_tab(qtbot, other)
    assert other_tab.visible_rows() == []
    with qtbot.waitSignal(other.ledger_changed, timeout=TIMEOUT_MS):
        button(other_tab, "importButton").click()
    wait_idle(qtbot, other_tab)
    assert warnings_shown == []
    [imported] = other_tab.visible_rows()
    assert imported.policy_hash == row.policy_hash and imported.origin == "imported"
    assert not imported.own and imported.publisher == model.own_key()
    assert other_tab.proxy.index(0, 5).data() == imported.publisher_id
    assert other_tab.current_row() == imported and other_tab.detail.policy_hash == row.policy_hash
    assert "Imported" in other_tab.status.text()
    origin = tlog.origin(model.ctx.ledger, model.ctx.publisher.key_id)
    assert f"Proof: included in {origin} at size 4" in other_tab.status.toolTip()
    other_tab.shutdown()


def test_a_bundle_from_a_fork_of_a_ledger_seen_before_is_refused(qtbot: Any, model: AppModel, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 warnings_shown: list[str]) -> None:
    twin = tmp_path / "ws-copy"
    shutil.copytree(model.workspace_root, twin)
    copy = Context.open(twin, tmp_path / "cfg")  # the same publisher, a second history
    save_policy(model.ctx, variant(5), None, {"kind": "added"})
    save_policy(copy, variant(6), None, {"kind": "added"})
    bundles = tmp_path / "seen.json", tmp_path / "forked.json"
    bundles[0].write_bytes(export_bundle(model.ctx, variant(5).hash))
    bundles[1].write_bytes(export_bundle(copy, variant(6).hash))
    other = AppModel(workspace=tmp_path / "ws2", config_dir=tmp_path / "cfg2")
    other_tab = make_tab(qtbot, other)
    for bundle in bundles:
        patch_dialogs(monkeypatch, bundle)
        other_tab.import_bundle()
        wait_idle(qtbot, other_tab)
    assert len(warnings_shown) == 1
    assert warnings_shown[0].startswith("bundle refused: fork of policyledger/ledger/")
    assert "same size (5)" in warnings_shown[0] and "both checkpoints kept in" in warnings_shown[0]
    assert [row.policy_hash for row in other_tab.visible_rows()] == [variant(5).hash]
    assert len(list((tmp_path / "cfg2" / "tlog" / "forks").iterdir())) == 1
    other_tab.shutdown()


@pytest.mark.parametrize(("marker", "reason"), [
    (b'"signature":"', "bundle: the signature does not verify with the publisher's key"),
    (b'"actions":[', "bundle: the entry records another policy hash than the policy's"),
])
def test_hostile_bundle_is_refused_and_nothing_is_written(qtbot: Any, model: AppModel, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          warnings_shown: list[str], marker: bytes,
                                                          reason: str) -> None:
    data = bytearray(export_bundle(model.ctx, model.ranking()[0].policy_hash))
    at = data.rindex(marker) + len(marker)  # one byte: a hex digit of the signature, or an action
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    bundle = tmp_path / "hostile.json"
    bundle.write_bytes(bytes(data))
    patch_dialogs(monkeypatch, bundle)

    other = AppModel(workspace=tmp_path / "ws2", config_dir=tmp_path / "cfg2")
    other_tab = make_tab(qtbot, other)
    before = snapshot(other.workspace_root, tmp_path / "cfg2")
    other_tab.import_bundle()
    wait_idle(qtbot, other_tab)
    assert warnings_shown == [reason]
    assert snapshot(other.workspace_root, tmp_path / "cfg2") == before
    assert other_tab.visible_rows() == [] and len(other.entries()) == 0
    other_tab.shutdown()


def test_export_failure_says_so_and_writes_nothing(qtbot: Any, tab: MarketplaceTab, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   warnings_shown: list[str]) -> None:
    select(tab, 0)
    target = tmp_path / "missing-folder" / "x.json"
    patch_dialogs(monkeypatch, target)
    tab.export_selected()
    wait_idle(qtbot, tab)
    assert len(warnings_shown) == 1 and warnings_shown[0].startswith("Export failed, nothing written")
    assert "\n" not in warnings_shown[0]
    assert not target.parent.exists()


# -- adding policy files --------------------------------------------------------------------------


def test_add_policy_file_records_it_as_added(qtbot: Any, tab: MarketplaceTab, model: AppModel,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             warnings_shown: list[str]) -> None:
    policy = variant(5)
    path = tmp_path / "mine.json"
    path.write_bytes(policy.canonical_bytes())
    patch_dialogs(monkeypatch, path)
    threads = record_callback_threads(monkeypatch, tab, "_on_saved")
    with qtbot.waitSignal(model.ledger_changed, timeout=TIMEOUT_MS):
        button(tab, "addPolicyButton").click()
    wait_idle(qtbot, tab)
    assert warnings_shown == []
    assert threads == [threading.main_thread()]  # the worker's result is handled in the GUI thread
    assert len(tab.visible_rows()) == 5
    added = tab.current_row()
    assert added is not None and added.policy_hash == policy.hash and added.origin == "added"
    assert tab.detail.policy_hash == policy.hash


def _bad_action() -> bytes:
    doc = variant(0).to_dict()
    doc["actions"][3] = 7
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("content", "expected"), [
    (b'{"schema": "policyledger/policy", "version": 1', "Not a valid policy: policy file:"),
    (_bad_action(), "Not a valid policy: actions[3]: expected an action 0..4, got 7"),
])
def test_broken_policy_file_is_refused(qtbot: Any, tab: MarketplaceTab, model: AppModel, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch, warnings_shown: list[str],
                                       content: bytes, expected: str) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    patch_dialogs(monkeypatch, path)
    before = snapshot(model.workspace_root)
    tab.add_policy_file()  # read and parsed in the background
    wait_idle(qtbot, tab)
    assert len(warnings_shown) == 1 and warnings_shown[0].startswith(expected)
    assert "\n" not in warnings_shown[0]
    assert snapshot(model.workspace_root) == before


# -- re-verify, compare, replay -------------------------------------------------------------------


def test_reverify_reproduces_and_reports_a_mismatch(qtbot: Any, tab: MarketplaceTab, model: AppModel,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    select(tab, 1)
    row = tab.current_row()
    claimed = model.ctx.ledger.find_policy(row.policy_hash).verification.replay_digest
    threads = record_callback_threads(monkeypatch, tab, "_on_reverified")
    button(tab, "reverifyButton").click()
    wait_idle(qtbot, tab)
    assert "reproduced" in tab.status.text() and claimed[:12] in tab.status.text()

    real_verify = comparison.verify_policy  # the core decides; forge what its replay gives
    monkeypatch.setattr(comparison, "verify_policy", lambda policy, episodes=1000: dataclasses.replace(
        real_verify(policy, episodes), replay_digest="0" * 64))
    button(tab, "reverifyButton").click()
    wait_idle(qtbot, tab)
    assert "MISMATCH" in tab.status.text() and "000000000000" in tab.status.text()
    assert claimed[:12] in tab.status.text()
    assert threads == [threading.main_thread()] * 2


def test_reverify_compares_every_recorded_figure(qtbot: Any, tab: MarketplaceTab, model: AppModel,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    select(tab, 1)
    row = tab.current_row()
    real_verify = comparison.verify_policy  # same replay digest, another mean: the digest alone would pass it
    monkeypatch.setattr(comparison, "verify_policy", lambda policy, episodes=1000: dataclasses.replace(
        real_verify(policy, episodes), mean=row.mean - 30))
    button(tab, "reverifyButton").click()
    wait_idle(qtbot, tab)
    text = tab.status.text()
    assert "MISMATCH" in text and f"recorded mean {row.mean:.2f}, replay gives {row.mean - 30:.2f}" in text
    assert "\n" not in text and "reproduced" not in text


def test_compare_dialog_lists_differing_observations(qtbot: Any, tab: MarketplaceTab,
                                                     model: AppModel) -> None:
    rows = [r for r in tab.visible_rows() if r.preset == "standard"][:2]
    positions = [tab.visible_rows().index(r) for r in rows]
    select(tab, *positions)
    button(tab, "compareButton").click()
    wait_idle(qtbot, tab)
    dialog = tab.compare_dialog
    assert dialog is not None and dialog.isVisible()
    policies = [model.ctx.store.get(r.policy_hash) for r in tab.selected_rows()]
    expected = [obs for obs in FREE if policies[0].actions[obs] != policies[1].actions[obs]]
    assert expected and dialog.differing == expected
    table = dialog.differing_rows()
    assert [line[0] for line in table] == [observation_name(obs) for obs in expected]
    assert table[0][1:] == [dyn.ACTION_NAMES[p.actions[expected[0]]] for p in policies]
    [pair] = dialog.paired.pairs
    first, second = tab.selected_rows()
    assert pair.result is not None
    assert pair.result.mean_diff == pytest.approx(first.mean - second.mean)  # same episodes
    assert pair.result.ci95 > 0
    assert dialog.paired.means == [first.mean, second.mean]
    cells = [dialog.paired_table.item(0, c).text() for c in range(4)]
    assert cells[:2] == ["A - B", f"{pair.result.mean_diff:+.2f}"]
    assert cells[3] in ("A is better", "B is better", "no difference shown")


def test_compare_across_configurations_says_they_cannot_be_paired(qtbot: Any, tab: MarketplaceTab) -> None:
    rows = tab.visible_rows()
    standard = next(i for i, r in enumerate(rows) if r.preset == "standard")
    burst = next(i for i, r in enumerate(rows) if r.preset == "short-burst")
    select(tab, standard, burst)
    tab.compare_selected()
    wait_idle(qtbot, tab)
    dialog = tab.compare_dialog
    assert dialog is not None
    [pair] = dialog.paired.pairs
    assert pair.result is None
    assert "same configuration" in dialog.paired_note.text()
    assert dialog.paired_table.item(0, 3).text().startswith("different configurations")


def _env_return(policy_actions: tuple[int, ...], seed: int) -> tuple[float, int]:
    env = CyberDefenseEnv(config=preset("standard"))
    obs, _ = env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        obs, reward, done, _, _ = env.step(policy_actions[obs])
        total += float(reward)
        steps += 1
    return total, steps


def test_replay_dialog_steps_through_an_episode(qtbot: Any, tab: MarketplaceTab, model: AppModel) -> None:
    select(tab, 1)
    row = tab.current_row()
    button(tab, "replayButton").click()
    wait_idle(qtbot, tab)
    dialog = tab.replay_dialog
    assert dialog is not None and dialog.offset.value() == 0 and dialog.seed == EVAL_SEED_BASE
    dialog.step_button.click()
    assert dialog.policy_table.rowCount() == 1 and dialog.myopic_table.rowCount() == 1
    dialog.play_to_end()
    policy = model.ctx.store.get(row.policy_hash)
    total, steps = _env_return(policy.actions, EVAL_SEED_BASE)
    mine, myopic = dialog.tracks
    assert mine.total == pytest.approx(total) and dialog.policy_table.rowCount() == steps
    last = dialog.policy_table.item(steps - 1, 5).text()
    assert last == f"{total:.1f}"
    myopic_total, myopic_steps = _env_return(MYOPIC_ACTIONS, EVAL_SEED_BASE)
    assert myopic.total == pytest.approx(myopic_total) and dialog.myopic_table.rowCount() == myopic_steps
    assert not dialog.step_button.isEnabled()

    dialog.offset.setValue(7)  # another episode: starts over
    assert dialog.seed == EVAL_SEED_BASE + 7 and dialog.policy_table.rowCount() == 0
    dialog.timer.setInterval(1)
    dialog.play_button.click()
    qtbot.waitUntil(lambda: dialog.episode_over, timeout=TIMEOUT_MS)
    assert mine is not dialog.tracks[0]
    assert dialog.tracks[0].total == pytest.approx(_env_return(policy.actions, EVAL_SEED_BASE + 7)[0])
    assert not dialog.timer.isActive()


def test_shutdown_waits_for_a_running_import(qtbot: Any, tab: MarketplaceTab, model: AppModel,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mine.json"
    path.write_bytes(variant(6).canonical_bytes())
    patch_dialogs(monkeypatch, path)
    tab.add_policy_file()
    assert tab.busy
    tab.shutdown()
    assert not tab.busy


# -- reproduced here ------------------------------------------------------------------------------


def elsewhere(model: AppModel, tmp_path: Path) -> AppModel:
    """The same workspace seen by another user (another config folder): nothing is reproduced there yet."""
    return AppModel(workspace=model.workspace_root, config_dir=tmp_path / "cfg-elsewhere")


def progress_bar(tab: MarketplaceTab) -> QProgressBar:
    found = tab.findChild(QProgressBar, "marketplaceProgress")
    assert found is not None
    return found


def ranking_state(tab: MarketplaceTab) -> QLabel:
    found = tab.findChild(QLabel, "marketplaceRanking")
    assert found is not None
    return found


def test_waiting_entries_are_replayed_in_the_background_then_ranked(
        qtbot: Any, model: AppModel, tmp_path: Path, held_replay: HeldReplay,
        warnings_shown: list[str]) -> None:
    other = elsewhere(model, tmp_path)
    widget = make_tab(qtbot, other)
    assert widget.reproducing
    qtbot.waitUntil(lambda: held_replay.runs == [[0, 1, 2, 3]], timeout=TIMEOUT_MS)
    assert widget.visible_rows() == []  # nothing is ranked before it is reproduced here
    assert not progress_bar(widget).isHidden()
    assert progress_bar(widget).text() == "Reproducing 1 of 4 entries on this machine\u2026"
    assert ranking_state(widget).text() == "0 ranked (reproduced here) \u00b7 4 waiting for replay"
    assert "replay" in widget.detail.message.text()

    widget.refresh()
    other.notify_changed()
    assert held_replay.runs == [[0, 1, 2, 3]]  # a refresh while it runs starts no second replay
    held_replay.release.set()
    qtbot.waitUntil(lambda: not widget.reproducing, timeout=TIMEOUT_MS)
    grouped = sorted(model.ranking(), key=lambda r: (r.preset or "", r.rank))  # by preset, then rank
    assert [r.policy_hash for r in widget.visible_rows()] == [r.policy_hash for r in grouped]
    assert ranking_state(widget).text() == "4 ranked (reproduced here)"
    assert progress_bar(widget).isHidden()
    assert held_replay.runs == [[0, 1, 2, 3]] and warnings_shown == []
    assert pending(other.ctx.ledger, other.ctx.reproductions) == []

    again = make_tab(qtbot, elsewhere(model, tmp_path))  # remembered: the next start replays nothing
    assert not again.reproducing and len(again.visible_rows()) == 4
    widget.shutdown()


def test_waiting_policies_are_not_ranked_rows(qtbot: Any, model: AppModel, tmp_path: Path,
                                              held_replay: HeldReplay) -> None:
    other = elsewhere(model, tmp_path)
    scanned = other.ctx.ledger.scanned()
    other.ctx.reproductions.record([scanned[0].hash, scanned[2].hash])
    widget = make_tab(qtbot, other)
    qtbot.waitUntil(lambda: held_replay.runs == [[1, 3]], timeout=TIMEOUT_MS)
    assert {r.policy_hash for r in widget.visible_rows()} == {scanned[0].policy_hash, scanned[2].policy_hash}
    state = ranking_state(widget)
    assert state.text() == "2 ranked (reproduced here) \u00b7 2 waiting for replay"
    assert "#1" in state.toolTip() and scanned[1].policy_hash[:12] in state.toolTip()
    assert "#3" in state.toolTip() and "#2" not in state.toolTip()
    assert progress_bar(widget).text() == "Reproducing 1 of 2 entries on this machine\u2026"

    held_replay.release.set()
    qtbot.waitUntil(lambda: not widget.reproducing, timeout=TIMEOUT_MS)
    assert len(widget.visible_rows()) == 4 and state.text() == "4 ranked (reproduced here)"
    widget.shutdown()


def test_the_ranking_follows_entries_reproduced_by_another_view(qtbot: Any, model: AppModel, tmp_path: Path,
                                                                held_replay: HeldReplay) -> None:
    other = elsewhere(model, tmp_path)
    widget = make_tab(qtbot, other)
    assert widget.visible_rows() == []
    other.ctx.reproductions.record([line.hash for line in other.ctx.ledger.scanned()])  # as Verify does
    other.notify_reproduced()
    assert len(widget.visible_rows()) == 4  # while its own replay is still held
    assert ranking_state(widget).text() == "4 ranked (reproduced here)"
    held_replay.release.set()
    qtbot.waitUntil(lambda: not widget.reproducing, timeout=TIMEOUT_MS)
    assert held_replay.runs == [[0, 1, 2, 3]]
    widget.shutdown()


def test_a_replay_that_does_not_reproduce_makes_the_ledger_read_only(
        qtbot: Any, model: AppModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        warnings_shown: list[str]) -> None:
    forged = model.ctx.ledger.entry(2).policy_hash
    real_verify = audit.verify_policy  # the core decides; forge what its replay of entry 2 gives

    def verify(policy: Policy, episodes: int = 1000) -> Any:
        report = real_verify(policy, episodes)
        return dataclasses.replace(report, mean=report.mean - 30) if policy.hash == forged else report

    monkeypatch.setattr(audit, "verify_policy", verify)
    other = elsewhere(model, tmp_path)
    widget = make_tab(qtbot, other)
    with qtbot.waitSignal(other.ledger_changed, timeout=TIMEOUT_MS):  # the Ledger tab and status bar hear it
        pass
    problem = other.ctx.ledger.problem
    assert other.ctx.ledger.read_only and problem is not None and problem.index == 2
    assert problem.reason.startswith("recorded mean ") and ", replay gives " in problem.reason
    assert not widget.reproducing and progress_bar(widget).isHidden()
    assert sorted(r.first_index for r in widget.visible_rows()) == [0, 1]  # reproduced before it
    assert "entry 2" in widget.status.text() and problem.reason in widget.status.text()
    state = ranking_state(widget)
    assert state.text().startswith("2 ranked (reproduced here)")
    assert "read-only" in state.text() and problem.reason in state.text()
    assert warnings_shown == []  # said in the tab, no message box

    widget.refresh()  # a read-only ledger is not replayed again
    assert not widget.reproducing


def test_shutdown_stops_the_background_replay(qtbot: Any, model: AppModel, tmp_path: Path,
                                              held_replay: HeldReplay) -> None:
    other = elsewhere(model, tmp_path)
    widget = make_tab(qtbot, other)
    assert widget._replays.task is not None
    thread = widget._replays.task.qthread
    threading.Timer(0.2, held_replay.release.set).start()  # goes on while shutdown waits
    widget.shutdown()
    assert not thread.isRunning() and not widget.reproducing
    seen = Context.open(other.workspace_root, tmp_path / "cfg-elsewhere")  # what the replay's own view kept
    assert len(pending(seen.ledger, seen.reproductions)) >= 3  # stopped after one entry at most


@pytest.mark.parametrize("action", ["import_bundle", "add_policy_file"])
def test_picking_a_fifo_or_device_is_refused_at_once(tab: MarketplaceTab, tmp_path: Path, action: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     warnings_shown: list[str]) -> None:
    """A FIFO opened for reading would block the window for ever; /dev/zero would fill memory."""
    fifo = tmp_path / "bundle.json"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a character device")):
        patch_dialogs(monkeypatch, path)
        getattr(tab, action)()
        assert not tab.busy
        nothing = "imported" if action == "import_bundle" else "added"
        assert warnings_shown[-1] == f"{path.name}: not a regular file ({kind}). Nothing was {nothing}."
