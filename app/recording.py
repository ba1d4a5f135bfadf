"""The current run's recording of every episode, when the user asked for one (no Qt here).

The training process appends each episode's figures to the file as it packs them (see
:class:`app.episode_relay.Packer`); the plots keep their bounded history whatever the run's
length. Export CSV then writes the recording, every episode, instead of the plots' buckets.
One recording at a time: the next recorded run replaces it, and closing the window removes it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FOLDER = "recordings"


class Recording:
    """Where the run being shown records every episode, if it does."""

    def __init__(self, config_dir: Path) -> None:
        self.folder = config_dir / FOLDER
        self.path: Path | None = None

    def begin(self) -> str:
        """A fresh recording for a new run (whatever the file held is removed); returns its path."""
        self.discard()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"run-{os.getpid()}.f8"
        self.path.unlink(missing_ok=True)
        return str(self.path)

    @property
    def active(self) -> bool:
        """A recording of the run shown exists (it may still grow)."""
        return self.path is not None and self.path.is_file()

    def discard(self) -> None:
        """No recording any more (a new run, another workspace, the window closing)."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
        self.path = None


def describe_size(count: int) -> str:
    """A byte count for the status line: ``12.3 MB``."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"
