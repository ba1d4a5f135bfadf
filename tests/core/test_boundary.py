"""policyledger_core never imports Qt (or the app)."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "app")


def test_core_import_loads_no_qt() -> None:
    code = (
        "import json, sys, importlib, pkgutil\n"
        "import policyledger_core\n"
        "for m in pkgutil.walk_packages(policyledger_core.__path__, 'policyledger_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert bad == []
    assert "policyledger_core.cli" in loaded  # the walk really imported every module
