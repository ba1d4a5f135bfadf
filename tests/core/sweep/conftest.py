"""One real local Ray instance for the whole test session (Ray has no local mode any more)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    root = tmp_path_factory.mktemp("ray")
    home = root / "home"
    home.mkdir()
    previous = os.environ.get("HOME")
    os.environ["HOME"] = str(home)  # Ray keeps a token under the home folder: never the real one
    # Ray's sockets live under its temporary folder, whose path must stay short (108 bytes).
    temp = Path(tempfile.mkdtemp(prefix="pl-ray-"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=str(temp))
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        if previous is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = previous
