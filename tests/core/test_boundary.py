"""The core's walls: no Qt anywhere in it, no Gymnasium below the environment, layers checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "app")


def _loaded_after(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    code += "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_core_import_loads_no_qt() -> None:
    loaded = _loaded_after(
        "import importlib, pkgutil\n"
        "import policyledger_core\n"
        "for m in pkgutil.walk_packages(policyledger_core.__path__, 'policyledger_core.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
    )
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert bad == []
    assert "policyledger_core.cli.main" in loaded  # the walk really imported every module
    assert "policyledger_core.sim.environment" in loaded


@pytest.mark.parametrize("module", ["policyledger_core", "policyledger_core.ledger.chain",
                                    "policyledger_core.workspace.context",
                                    "policyledger_core.workspace.bundles",
                                    "policyledger_core.workspace.marketplace", "policyledger_core.policy",
                                    "policyledger_core.workspace.publish",
                                    "policyledger_core.workspace.audit", "policyledger_core.verify.tasks"])
def test_ledger_and_workspace_load_no_gymnasium(module: str) -> None:
    loaded = _loaded_after(f"import {module}")
    assert module in loaded
    assert [m for m in loaded if m.split(".")[0] in ("gymnasium", *FORBIDDEN)] == []


def test_environment_registers_itself_on_import() -> None:
    loaded = _loaded_after(
        "import gymnasium as gym\n"
        "import policyledger_core.sim.environment\n"
        "from policyledger_core.sim.config import ENV_ID\n"
        "assert ENV_ID in gym.registry\n"
        "gym.make(ENV_ID, preset_name='standard').reset(seed=1)\n"
    )
    assert "gymnasium" in loaded

