"""Test isolation: no test touches the shipped workspace or the real home, and nothing is left behind.

Set at import time, before any QApplication or platformdirs lookup exists.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SANDBOX = Path(tempfile.mkdtemp(prefix="policyledger-tests-"))
for _name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"):
    _path = _SANDBOX / _name.lower()
    _path.mkdir(mode=0o700)
    os.environ[_name] = str(_path)
os.environ["POLICYLEDGER_CONFIG_DIR"] = str(_SANDBOX / "config")
os.environ["POLICYLEDGER_WORKSPACE"] = str(_SANDBOX / "default-workspace")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_configure(config: pytest.Config) -> None:
    # Every tmp_path lives in the sandbox, so removing it at the end leaves the temporary folder as it was.
    if config.option.basetemp is None:
        config.option.basetemp = str(_SANDBOX / "pytest")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SANDBOX, ignore_errors=True)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh empty workspace and config folder, also set as the defaults."""
    root = tmp_path / "workspace"
    config = tmp_path / "config"
    monkeypatch.setenv("POLICYLEDGER_WORKSPACE", str(root))
    monkeypatch.setenv("POLICYLEDGER_CONFIG_DIR", str(config))
    yield root
