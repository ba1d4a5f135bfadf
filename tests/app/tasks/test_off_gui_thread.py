"""Every user action that reads files or replays runs off the GUI thread, which keeps processing events.

Each task's work function is wrapped: it records the thread it runs in, and waits
until a timer in the GUI thread has ticked a few times. Run on the GUI thread,
the timer could not tick and the wrapper would report it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app import ledger_tab, marketplace_tab, training_tab
from app.ledger_tab import LedgerTab
from app.marketplace_tab import MarketplaceTab
from app.model import AppModel
from app.training_tab import TrainingTab
from policyledger_core.policy import MYOPIC_ACTIONS, TERMINAL_OBSERVATIONS, Policy
from policyledger_core.sim.config import preset
from policyledger_core.workspace.publish import save_policy

TIMEOUT_MS = 30_000
TICKS = 3


def policy(k: int, preset_name: str = "standard") -> Policy:
    """The myopic policy with three non-terminal actions changed (k = 0: unchanged)."""
    actions = list(MYOPIC_ACTIONS)
    free = [obs for obs in range(len(actions)) if obs not in TERMINAL_OBSERVATIONS]
    for obs in free[3 * k:3 * k + 3] if k else []:
        actions[obs] = (actions[obs] + 1) % 5
    return Policy(preset(preset_name), tuple(actions))


class Probe:
    """Wraps task functions; each call records (name, thread, whether the GUI's event loop ran meanwhile)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.calls: list[tuple[str, threading.Thread, bool]] = []
        self.ticks = 0
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        self.ticks += 1

    def _loop_runs(self) -> bool:
        """True when the GUI thread's timer ticks while this waits (never, were this the GUI thread)."""
        start, deadline = self.ticks, time.monotonic() + 2.0
        while self.ticks < start + TICKS and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.ticks >= start + TICKS

    def wrap(self, module: ModuleType, name: str) -> None:
        real: Callable[..., Any] = getattr(module, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, threading.current_thread(), self._loop_runs()))
            return real(*args, **kwargs)

        self.monkeypatch.setattr(module, name, call)

    def wrap_generator(self, module: ModuleType, name: str) -> None:
        real: Callable[..., Generator[Any, None, Any]] = getattr(module, name)

        def run(*args: Any, **kwargs: Any) -> Generator[Any, None, Any]:
            self.calls.append((name, threading.current_thread(), self._loop_runs()))
            return (yield from real(*args, **kwargs))

        self.monkeypatch.setattr(module, name, run)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def assert_all_off_the_gui_thread(self) -> None:
        assert self.calls
        for name, thread, loop_ran in self.calls:
            assert thread is not threading.main_thread(), name
            assert loop_ran, f"{name}: the GUI's event loop stood still while it ran"


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[Probe]:
    made = Probe(monkeypatch)
    yield made
    made.timer.stop()


@pytest.fixture
def model(tmp_path: Path) -> AppModel:
    app_model = AppModel(workspace=tmp_path / "ws", config_dir=tmp_path / "cfg")
    for k in range(3):
        save_policy(app_model.ctx, policy(k), None, {"kind": "added"})
    return app_model


def test_verify_and_repair_run_off_the_gui_thread(qtbot: Any, model: AppModel, probe: Probe,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    probe.wrap_generator(ledger_tab, "audit_task")
    probe.wrap_generator(ledger_tab, "plan_task")
    probe.wrap(ledger_tab, "repair_task")
    tab = LedgerTab(model)
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.verification_finished, timeout=TIMEOUT_MS):
        tab.verify()
        assert tab.running and not tab.verify_button.isEnabled()

    lines = model.ctx.workspace.ledger_path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"kind":"added"', b'"kind":"trained"')  # entry 1 edited
    model.ctx.workspace.ledger_path.write_bytes(b"\n".join(lines))
    model.reload()
    assert tab.repair_button.isEnabled()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(tab.repair_finished, timeout=TIMEOUT_MS) as blocker:
        tab.repair_button.click()
        assert tab.running and not tab.repair_button.isEnabled() and not tab.verify_button.isEnabled()
    assert blocker.args[0] is not None and not model.ctx.ledger.read_only
    assert probe.names() == ["audit_task", "plan_task", "repair_task"]
    probe.assert_all_off_the_gui_thread()
    tab.shutdown()


def test_marketplace_actions_run_off_the_gui_thread(qtbot: Any, model: AppModel, probe: Probe,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("load_task", "compare_task", "export_task", "import_task", "add_task", "reverify_task",
                 "policy_task"):
        probe.wrap(marketplace_tab, name)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: pytest.fail(f"warning: {a[2]}"))
    tab = MarketplaceTab(model)
    qtbot.addWidget(tab)
    flags = tab.table.selectionModel().SelectionFlag

    def select(*rows: int) -> None:
        tab.table.clearSelection()
        for row in rows:
            tab.table.selectionModel().select(tab.proxy.index(row, 0), flags.Select | flags.Rows)
        tab.table.selectionModel().setCurrentIndex(tab.proxy.index(rows[0], 0), flags.NoUpdate)

    def wait() -> None:
        qtbot.waitUntil(lambda: not tab.busy, timeout=TIMEOUT_MS)

    select(0)
    assert tab.loading_detail
    wait()
    assert tab.detail.policy_hash == tab.visible_rows()[0].policy_hash

    select(0, 1)
    wait()
    tab.buttons["compareButton"].click()
    assert tab.busy and not tab.buttons["compareButton"].isEnabled()  # no second conflicting task
    assert not tab.buttons["importButton"].isEnabled() and tab.busy_bar.isVisibleTo(tab)
    wait()
    assert tab.compare_dialog is not None and not tab.busy_bar.isVisibleTo(tab)

    bundle = tmp_path / "out.bundle.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(bundle), ""))
    tab.buttons["exportButton"].click()
    wait()
    assert bundle.is_file()

    tab.buttons["reverifyButton"].click()
    wait()
    assert "reproduced" in tab.status.text()
    tab.buttons["replayButton"].click()
    wait()
    assert tab.replay_dialog is not None

    other = AppModel(workspace=tmp_path / "ws2", config_dir=tmp_path / "cfg2")
    other_tab = MarketplaceTab(other)
    qtbot.addWidget(other_tab)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bundle), ""))
    with qtbot.waitSignal(other.ledger_changed, timeout=TIMEOUT_MS):
        other_tab.buttons["importButton"].click()
    qtbot.waitUntil(lambda: not other_tab.busy, timeout=TIMEOUT_MS)
    added = tmp_path / "added.json"
    added.write_bytes(policy(5).canonical_bytes())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(added), ""))
    with qtbot.waitSignal(other.ledger_changed, timeout=TIMEOUT_MS):
        other_tab.buttons["addPolicyButton"].click()
    qtbot.waitUntil(lambda: not other_tab.busy, timeout=TIMEOUT_MS)
    assert len(other.entries()) == 2

    for name in ("load_task", "compare_task", "export_task", "import_task", "add_task", "reverify_task",
                 "policy_task"):
        assert name in probe.names(), name
    probe.assert_all_off_the_gui_thread()
    tab.shutdown()
    other_tab.shutdown()


def test_saving_what_training_learned_runs_off_the_gui_thread(qtbot: Any, tmp_path: Path,
                                                               probe: Probe) -> None:
    probe.wrap(training_tab, "save_task")
    tab = TrainingTab(AppModel(tmp_path / "ws", tmp_path / "cfg"))
    qtbot.addWidget(tab)
    tab.form.preset.setCurrentText("short-burst")
    tab.form.episodes.setValue(60)
    with qtbot.waitSignal(tab.training_finished, timeout=TIMEOUT_MS):
        tab.start()
    assert probe.names() == ["save_task"]
    probe.assert_all_off_the_gui_thread()
    assert len(tab.model.ctx.ledger) == 1


def test_the_probe_notices_work_on_the_gui_thread(probe: Probe) -> None:
    """The check above is real: the same work called on the GUI thread stops the timer."""
    module = ModuleType("work")
    module.work = lambda: 7  # type: ignore[attr-defined]
    probe.wrap(module, "work")
    assert module.work() == 7  # type: ignore[attr-defined]
    [(_, thread, loop_ran)] = probe.calls
    assert thread is threading.main_thread() and not loop_ran
