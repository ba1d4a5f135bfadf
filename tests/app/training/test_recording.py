"""Recording every episode: streamed to a file while training, its size shown, exported whole as CSV;
one recording at a time, removed with the window."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog

from app.episode_relay import RETURN, Packer, recording_columns
from app.model import AppModel
from app.plot_history import CSV_COLUMNS, POPULATION_COLUMNS, write_recording_csv
from app.training_tab import TrainingTab
from policyledger_core.learn.engine import EpisodeBatch
from policyledger_core.learn.envelope import smoothed


@pytest.fixture
def tab(qtbot: Any, tmp_path: Path) -> Iterator[TrainingTab]:
    widget = TrainingTab(AppModel(tmp_path / "ws", tmp_path / "cfg"))
    qtbot.addWidget(widget)
    widget.form.preset.setCurrentText("short-burst")
    widget.form.seed.setValue(3)
    yield widget
    widget._training.shutdown()


def _export(qtbot: Any, tab: TrainingTab, target: Path,
            monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_args: (str(target), ""))
    tab.export_csv()
    qtbot.waitUntil(lambda: not tab._exporting.busy, timeout=30_000)
    with target.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _batch(first: int, n: int, agents: int) -> EpisodeBatch:
    episodes = np.arange(first, first + n)
    returns = np.stack([np.sin(episodes / 7.0) * 10 + k for k in range(agents)], axis=1)
    steps = np.ones((n, agents), dtype=np.int64) * 3
    return EpisodeBatch(first, returns, np.full(n, 0.5), steps, returns - 1.0,
                        np.zeros((n, agents, 5), dtype=np.int64))


@pytest.mark.parametrize("agents", [1, 4])
def test_a_recording_keeps_every_episode_the_plots_merge(tmp_path: Path, agents: int) -> None:
    path = tmp_path / "run.f8"
    packer = Packer(max_points=10, burst=10, record=str(path))
    relays = [packer([_batch(first, 1_000, agents)]) for first in range(0, 5_000, 1_000)]
    assert sum(len(r) for r in relays) <= 60  # the window got buckets ...
    width = recording_columns(agents > 1)
    assert relays[-1].recorded_bytes == path.stat().st_size == 5_000 * width * 8  # ... the file every episode
    rows = list(write_recording_csv(path, agents > 1, 0.6, tmp_path / "all.csv"))
    assert rows[-1] == (5_000, 5_000)
    with (tmp_path / "all.csv").open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == list(CSV_COLUMNS) + (list(POPULATION_COLUMNS) if agents > 1 else [])
    mean = np.sin(np.arange(5_000) / 7.0) * 10 + (agents - 1) / 2
    assert [int(row["first_episode"]) for row in table] == list(range(5_000))
    assert {row["kind"] for row in table} == {"episode"}
    assert np.allclose([float(row["return_mean"]) for row in table], mean, atol=1e-4)
    assert np.allclose([float(row["smoothed"]) for row in table], smoothed(mean, 0.6), atol=1e-4)
    assert not (tmp_path / "all.csv.part").exists()


def test_a_recorded_run_shows_its_size_and_exports_every_episode(
        qtbot: Any, tab: TrainingTab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tab.form.record.setChecked(True)
    tab.form.until_stopped.setChecked(True)
    tab.start()
    qtbot.waitUntil(lambda: "recording" in tab.stats.text() and tab.plots.history.through > 30_000,
                    timeout=30_000)
    assert tab.stats.text().split("recording ")[1].endswith(("KB", "MB", "GB"))
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        tab.stop()
    episodes = tab.plots.history.through
    assert tab.plots.points < episodes  # the plots merged older episodes
    rows = _export(qtbot, tab, tmp_path / "every.csv", monkeypatch)
    assert len(rows) == episodes and rows[-1]["last_episode"] == str(episodes - 1)
    drawn = tab.plots.history.drawn()
    returns = np.array([float(row["return_mean"]) for row in rows])
    assert returns.max() == pytest.approx(drawn.hi(RETURN).max(), abs=1e-4)  # the same run, whole
    assert tab.stats.text() == f"Written {episodes:,} episodes to {tmp_path / 'every.csv'}"


def test_without_recording_the_csv_is_the_plots_envelope(
        qtbot: Any, tab: TrainingTab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tab.form.episodes.setValue(40_000)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        tab.start()
    assert not tab.recording.active
    rows = _export(qtbot, tab, tmp_path / "drawn.csv", monkeypatch)
    assert len(rows) == tab.plots.points < 40_000
    assert rows[0]["kind"] == "envelope"
    assert all((row["kind"] == "episode") == (row["episodes"] == "1") for row in rows)
    assert sum(int(row["episodes"]) for row in rows) == 40_000


def test_one_recording_at_a_time_removed_with_the_window(qtbot: Any, tab: TrainingTab) -> None:
    tab.form.record.setChecked(True)
    tab.form.episodes.setValue(500)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        tab.start()
    first = tab.recording.path
    assert first is not None and first.is_file() and first.stat().st_size > 0
    assert first.parent == tab.model.ctx.config_dir / "recordings"
    tab.form.record.setChecked(False)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        tab.start()
    assert not first.exists() and not tab.recording.active  # the run shown has no recording
    tab.form.record.setChecked(True)
    with qtbot.waitSignal(tab.training_finished, timeout=30_000):
        tab.start()
    assert tab.recording.active
    kept = tab.recording.path
    tab.shutdown()  # the window closes
    assert kept is not None and not kept.exists()
