"""Make the README's screenshots at 1280x800:
``xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python resources/make_screenshots.py``.

Works on a copy of the shipped workspace (with a throwaway config folder), so
nothing shipped or personal is touched. Trains two short runs (one agent, then
a population), overlays both from the runs list, pins the hover readout, grabs
each tab, then runs a small sweep and grabs the Sweeps tab.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "screenshots"


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="policyledger-shots-"))
    workspace = scratch / "workspace"
    workspace.mkdir()
    shutil.copy2(ROOT / "ledger.json", workspace / "ledger.json")
    shutil.copytree(ROOT / "policies", workspace / "policies")
    os.environ["POLICYLEDGER_CONFIG_DIR"] = str(scratch / "config")
    os.environ["XDG_CONFIG_HOME"] = str(scratch / "xdg")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    window = MainWindow(workspace=workspace)  # sized from the screen: 1280x800 under the command above
    window.show()
    OUT.mkdir(parents=True, exist_ok=True)

    def grab(index: int, name: str) -> None:
        window.tabs.setCurrentIndex(index)
        app.processEvents()
        window.grab().save(str(OUT / f"{name}.png"))

    tab = window.training_tab

    def finish() -> None:
        for run in tab.runs.runs:
            tab.runs.set_shown(run, True)
        app.processEvents()
        tab.plots.show_episode(int(tab.plots.points * 0.6))
        tab.plots.pin()
        grab(0, "training")
        rows = window.marketplace_tab.visible_rows()
        if rows:
            window.marketplace_tab.select_hashes({rows[0].policy_hash}, rows[0].policy_hash)
        QTimer.singleShot(1500, lambda: grab(1, "marketplace"))
        QTimer.singleShot(1600, window.ledger_tab.verify)
        QTimer.singleShot(3500, lambda: (grab(2, "ledger"), sweep()))

    def sweep() -> None:
        """A small sweep on the Sweeps tab: 2 presets x 3 learning rates x 5 seeds."""
        sweeps = window.sweeps_tab
        form = sweeps.form
        form.tick_presets({"standard", "short-burst"})
        window.tabs.setCurrentIndex(3)
        sweeps.start()

        def wait() -> None:
            if sweeps.running:
                QTimer.singleShot(200, wait)
                return
            sweeps.table.selectRow(5)
            QTimer.singleShot(500, lambda: (grab(3, "sweeps"), app.quit()))

        QTimer.singleShot(500, wait)

    def second_run(_saved: object) -> None:
        tab.training_finished.disconnect(second_run)
        tab.form.seed.setValue(4)
        tab.form.agents.setValue(16)
        tab.training_finished.connect(lambda _saved: QTimer.singleShot(400, finish))
        QTimer.singleShot(300, tab.start)

    tab.form.preset.setCurrentText("short-burst")
    tab.form.episodes.setValue(3000)
    tab.form.seed.setValue(3)
    tab.training_finished.connect(second_run)
    QTimer.singleShot(300, tab.start)
    app.exec()
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"screenshots in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
