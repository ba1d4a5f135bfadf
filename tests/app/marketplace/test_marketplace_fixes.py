"""The marketplace's empty state, steady layout, "±", a damaged ledger's banner, and where dialogs start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog, QFrame, QLabel

from app.compare_dialog import CompareDialog
from app.marketplace_tab import MarketplaceTab, compare_task
from app.model import AppModel
from policyledger_core.learn.engine import train_agents
from policyledger_core.learn.hyper import Hyperparameters
from policyledger_core.learn.single import run_to_end
from policyledger_core.sim.config import preset
from policyledger_core.workspace.publish import publish_run
from tests.app.marketplace import test_marketplace_tab as base
from tests.app.marketplace.test_marketplace_tab import button, make_tab, select_and_wait

model = base.model  # the fixtures of the tab's own tests
tab = base.tab
warnings_shown = base.warnings_shown


def test_nothing_selected_shows_an_empty_state(qtbot: Any, tab: MarketplaceTab) -> None:
    tab.show()
    qtbot.waitExposed(tab)
    detail = tab.detail
    assert detail.message.text() == "Select a policy to see its decisions and results."
    for plot in (detail.share_plot, detail.result_plot, detail.heatmap.plot):
        assert not plot.isVisible()  # no bars at 0.0, no "(x1e-12)" axis
        assert not plot.getAxis("bottom").autoSIPrefix
    select_and_wait(qtbot, tab, 0)
    assert detail.share_plot.isVisible() and detail.result_plot.isVisible()
    tab.table.clearSelection()
    tab.refresh()
    assert not detail.result_plot.isVisible()


def test_a_long_status_does_not_move_the_buttons(qtbot: Any, tab: MarketplaceTab) -> None:
    tab.show()
    qtbot.waitExposed(tab)
    export = button(tab, "exportButton")

    def place() -> tuple[int, int]:
        tab.layout().activate()
        qtbot.wait(10)
        return export.mapTo(tab, export.rect().topLeft()).y(), tab.status.height()

    tab._say("Short.")
    before = place()
    tab._say("A long message " * 40)
    assert place() == before
    assert "A long message" in tab.status.toolTip()
    assert tab.status.text().endswith("\u2026")  # cut within its two lines, not a third line peeking


def test_rewards_use_the_plus_minus_sign(qtbot: Any, tab: MarketplaceTab) -> None:
    select_and_wait(qtbot, tab, 0)
    cell = tab.proxy.index(0, 3).data()
    assert "\u00b1" in cell and "+/-" not in cell
    assert "\u00b1" in tab.detail.fields["reward"].text()


def _damaged(model: AppModel, tmp_path: Path) -> AppModel:
    path = model.ctx.workspace.ledger_path
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"mean":', b'"mean":1', 1)  # entry 2
    path.write_bytes(b"\n".join(lines))
    return AppModel(workspace=model.workspace_root, config_dir=tmp_path / "cfg")


def test_a_damaged_ledger_shows_a_banner_and_disables_import_and_add(
        qtbot: Any, model: AppModel, tmp_path: Path, warnings_shown: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    damaged = _damaged(model, tmp_path)
    problem = damaged.ctx.ledger.problem
    assert problem is not None and problem.index == 2
    widget = make_tab(qtbot, damaged)
    banner = widget.findChild(QFrame, "marketplaceBanner")
    assert banner is not None and banner.isVisibleTo(widget)
    text = widget.findChild(QLabel, "marketplaceBannerText").text()
    assert "entry 2" in text and problem.reason in text and "read-only" in text
    for name in ("importButton", "addPolicyButton"):
        found = button(widget, name)
        assert not found.isEnabled() and "read-only" in found.toolTip()
    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: asked.append("asked") or ("", ""))
    widget.import_bundle()  # the File menu's Import too: refused before a file is chosen
    assert asked == [] and "read-only" in widget.status.text()
    widget.shutdown()


def test_an_intact_ledger_has_no_banner(tab: MarketplaceTab) -> None:
    assert not tab.findChild(QFrame, "marketplaceBanner").isVisibleTo(tab)
    assert button(tab, "importButton").isEnabled()


def test_file_dialogs_start_in_the_workspace_then_remember(qtbot: Any, tab: MarketplaceTab, model: AppModel,
                                                            tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def pick(_parent: Any, _title: str, folder: str, *_rest: Any) -> tuple[str, str]:
        started.append(folder)
        return "", ""  # cancelled

    def pick_elsewhere(_parent: Any, _title: str, folder: str, *_rest: Any) -> tuple[str, str]:
        started.append(folder)
        return str(elsewhere / "none.json"), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", pick)
    tab.import_bundle()
    assert Path(started[-1]) == model.workspace_root
    monkeypatch.setattr(QFileDialog, "getOpenFileName", pick_elsewhere)
    tab.import_bundle()  # refused (no such file); the folder is remembered all the same
    monkeypatch.setattr(QFileDialog, "getOpenFileName", pick)
    tab.import_bundle()
    assert Path(started[-1]) == elsewhere
    tab.add_policy_file()  # another kind of dialog: still the workspace
    assert Path(started[-1]) == model.workspace_root
    select_and_wait(qtbot, tab, 0)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", pick)
    tab.export_selected()
    assert Path(started[-1]).parent == model.workspace_root and started[-1].endswith(".bundle.json")
    assert (tmp_path / "cfg" / "ui.ini").is_file()  # kept with the other UI settings


def test_detail_and_compare_show_how_a_policy_was_learned(qtbot: Any, model: AppModel,
                                                          warnings_shown: list[str]) -> None:
    hyper = Hyperparameters(episodes=40, seed=11)
    result = run_to_end(train_agents(preset("standard"), hyper, "q", 1))
    trained = publish_run(model.ctx, result).best.policy.hash
    model.notify_changed(None)
    widget = make_tab(qtbot, model)
    rows = widget.visible_rows()
    index = next(i for i, r in enumerate(rows) if r.policy_hash == trained)
    select_and_wait(qtbot, widget, index)
    field = widget.detail.fields["training"]
    assert field.text() == "Q-learning, 40 episodes, seed 11, K=1"
    assert "seed = 11" in field.toolTip()
    other = next(i for i, r in enumerate(rows) if r.policy_hash != trained)
    select_and_wait(qtbot, widget, other)
    assert widget.detail.fields["training"].text().startswith("none recorded")
    comparison = compare_task(model.place, [rows[index], rows[other]])
    dialog = CompareDialog(comparison, widget)
    qtbot.addWidget(dialog)
    metrics = dialog.metrics
    last = metrics.rowCount() - 1
    assert metrics.verticalHeaderItem(last).text() == "Training"
    assert metrics.item(last, 0).text() == "Q-learning, 40 episodes, seed 11, K=1"
    assert metrics.item(last, 1).text() == "none recorded"
