"""The linter and the type checker are part of the test suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def test_ruff_passes() -> None:
    done = _run("ruff", "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_passes_on_core_app_and_benchmarks() -> None:
    done = _run("mypy")  # files and strictness come from pyproject.toml
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_contracts_hold() -> None:
    # No Qt in the core, the core's layers, no Gymnasium in the ledger and workspace: pyproject.toml.
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_test_session_leaves_nothing_in_the_temporary_folder(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                           "tests/core/ledger/test_append.py::test_dedupe_same_policy_gives_one_entry"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in tmp.iterdir()) == []


def _repository_files() -> list[Path]:
    """The repository's files: tracked or new (``git ls-files``), else a walk of the tree."""
    try:
        done = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        done = None
    if done is not None and done.returncode == 0 and done.stdout:
        return sorted({ROOT / name for name in done.stdout.split("\0") if name})
    skip = {".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
    found: list[Path] = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
        found.extend(Path(folder) / name for name in names)
    return sorted(found)


def test_no_file_refers_to_a_path_outside_the_repository() -> None:
    # Built from pieces so that this file does not match itself.
    patterns = ("." + "./shared", "/" + "work/", "shared" + "/docs")
    offenders = []
    for path in _repository_files():
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):  # gone from the work tree, or binary
            continue
        if "\0" in text:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(pattern in line for pattern in patterns):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "references to paths outside the repository:\n" + "\n".join(offenders)
