"""Figures of the desktop app: event-loop stalls and plot refreshes while training, start-up time."""

from __future__ import annotations

import contextlib
import gc
import heapq
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_learning import Figure, figure

ROOT = Path(__file__).resolve().parent.parent
HISTORY = 100_000
MEASURE_SECONDS = 2.0

_STARTUP = """
import sys, time
t0 = float(sys.argv[1])
from pathlib import Path
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
{build}
window.show()
while not window.isVisible() or not window.windowHandle().isExposed():
    app.processEvents()
app.processEvents()
print(time.time() - t0)
"""
_BUILD_APP = "from app.main_window import MainWindow\nwindow = MainWindow(workspace=Path(sys.argv[2]))"
_BUILD_EMPTY = "from PySide6.QtWidgets import QMainWindow\nwindow = QMainWindow()"


def _start_seconds(build: str, workspace: Path, config: Path) -> float:
    env = {**os.environ, "POLICYLEDGER_CONFIG_DIR": str(config), "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(config / "xdg"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _STARTUP.format(build=build), repr(time.time()),
                          str(workspace)], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_startup() -> Iterator[Figure]:
    from bench_ledger import build_ledger

    with tempfile.TemporaryDirectory() as tmp:
        root, config = Path(tmp) / "ws", Path(tmp) / "cfg"
        ctx = build_ledger(root, config, 10_000, distinct=True)  # 10,000 different policies: the worst case
        # All reproduced here before (their digests are made up, so none is replayed): all 10,000 are ranked.
        ctx.reproductions.record([line.hash for line in ctx.ledger.scanned()])
        _start_seconds(_BUILD_APP, root, config)  # warm the disk cache and .pyc files
        app = min(_start_seconds(_BUILD_APP, root, config) for _ in range(3))
        empty = min(_start_seconds(_BUILD_EMPTY, root, config) for _ in range(3))
    yield figure("app_start_seconds_10k_entries", app, "s", reference=empty, target=1.5,
                 higher_is_better=False, reference_name="process start to an empty QMainWindow shown",
                 ledger="10,000 entries, each a different policy")


def _overlay_runs(tab: object, count: int) -> None:
    """``count`` finished runs of HISTORY episodes each, ticked so their curves are overlaid."""
    import numpy as np

    from app.plot_history import OVERLAY_POINTS
    from policyledger_core.learn.envelope import Records

    runs = tab.runs  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    episode = np.arange(HISTORY)
    for k in range(count):
        run = runs.add("short-burst", "recommended", "q", k, 1, HISTORY)
        returns = np.cumsum(rng.normal(0.0005, 1.0, HISTORY))
        rolling = np.convolve(returns, np.ones(100) / 100, mode="same")
        # As a finished run keeps its overlay: at most OVERLAY_POINTS buckets.
        merged = Records.of_episodes(episode, np.array([rolling, (episode + 1) * 20.0]))
        merged = merged.at_most(OVERLAY_POINTS)
        runs.finish(run, (merged.first + merged.last) / 2, (merged.lo[1] + merged.hi[1]) / 2,
                    merged.mean[0])
    runs.new_current()
    for run in runs.runs:
        runs.set_shown(run, True)


GAP_COLUMNS = ("ms, at ms, {progress}, ms on a processor, ms waiting for one, then the busiest other "
               "thread of the process: its name, ms on a processor, ms waiting for one; then ms the "
               "host held the machine's processors back, and the GUI thread's page faults that waited "
               "for a read")
"""What each of :meth:`StallProbe.worst`'s tuples holds."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
"""The unit of /proc/stat's times (USER_HZ)."""
Sched = dict[int, tuple[int, int]]
"""Per thread id: ns on a processor, ns runnable but waiting for one (the kernel's schedstat)."""


class _Threads:
    """Reads the schedstat of every thread of this process (Linux; empty elsewhere), through files
    kept open: a read is a ``pread`` of each, about 2 us, so the probe can read them every tick."""

    RELIST_TICKS = 20
    """New threads are looked for every 20 reads (100 ms at the probe's rate)."""

    def __init__(self) -> None:
        self.own = threading.get_native_id()
        self.files: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.ticks = 0
        self.stat: int | None = None
        self.own_stat: int | None = None
        with contextlib.suppress(OSError):
            self.stat = os.open("/proc/stat", os.O_RDONLY)
            self.own_stat = os.open(f"/proc/self/task/{self.own}/stat", os.O_RDONLY)
        self._list()

    def _list(self) -> None:
        try:
            tids = {int(name) for name in os.listdir("/proc/self/task")}
        except OSError:
            return
        for tid in tids - set(self.files):
            with contextlib.suppress(OSError):
                self.files[tid] = os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY)
                with open(f"/proc/self/task/{tid}/comm", encoding="utf-8", errors="replace") as comm:
                    self.names[tid] = comm.read().strip()

    def major_faults(self) -> float:
        """The probing thread's page faults that had to wait for a read (its "majflt"; a page the
        kernel had reclaimed, say), since it started; NaN where not told."""
        if self.own_stat is None:
            return float("nan")
        try:
            after_name = os.pread(self.own_stat, 1024, 0).rsplit(b")", 1)[1].split()
            return float(after_name[9])  # field 12 of /proc/<pid>/task/<tid>/stat
        except (OSError, ValueError, IndexError):
            return float("nan")

    def stolen_ms(self) -> float:
        """Time the machine's processors were held back by the host (a virtual machine's "steal",
        summed over its processors; 10 ms resolution), in ms since boot; NaN where not told."""
        if self.stat is None:
            return float("nan")
        try:
            return int(os.pread(self.stat, 256, 0).split(b"\n", 1)[0].split()[8]) * 1000 / CLOCK_TICKS
        except (OSError, ValueError, IndexError):
            return float("nan")

    def read(self) -> Sched:
        self.ticks += 1
        if self.ticks % self.RELIST_TICKS == 0:
            self._list()
        out: Sched = {}
        for tid, fd in list(self.files.items()):
            try:
                ran, waited, _slices = os.pread(fd, 128, 0).split()
            except (OSError, ValueError):  # the thread ended
                os.close(self.files.pop(tid))
                continue
            out[tid] = (int(ran), int(waited))
        return out

    def close(self) -> None:
        for fd in [*self.files.values(), *(f for f in (self.stat, self.own_stat) if f is not None)]:
            os.close(fd)
        self.files, self.stat, self.own_stat = {}, None, None


def _where(before: Sched, after: Sched, threads: _Threads) -> tuple[float, float, str, float, float]:
    """Over a gap, in ms: the probing (GUI) thread's time on a processor and waiting for one, then
    the name, time on a processor and waiting of the other thread that ran most (NaN and "" where
    the kernel does not say)."""
    nan = float("nan")

    def delta(tid: int) -> tuple[float, float]:
        if tid not in before or tid not in after:
            return nan, nan
        return ((after[tid][0] - before[tid][0]) / 1e6, (after[tid][1] - before[tid][1]) / 1e6)

    others = [(delta(tid), tid) for tid in after if tid != threads.own and tid in before]
    (ran, waited), tid = max(others, default=((nan, nan), 0), key=lambda pair: pair[0][0])
    return (*delta(threads.own), threads.names.get(tid, ""), ran, waited)


class StallProbe:
    """A 5 ms timer on the GUI thread: a gap far above 5 ms between two ticks is a stall.

    It keeps only the worst gaps, so that probing for minutes does not itself grow the memory
    the soak benchmark measures. Each kept gap says where the time went (from the kernel's
    per-thread schedstat, where there is one): the GUI thread's ms on a processor (the app's own
    work) and runnable but waiting for one (the machine busy); the rest it was blocked or idle
    (waiting for the GIL or a lock, a page fault's I/O, or the event loop waiting for the next
    tick). The busiest other thread's figures say who held the processor (or the GIL) meanwhile;
    then what a virtual machine's host took ("steal": a thread neither running nor waiting in
    the guest's view may simply have had its processor taken away), and the GUI thread's major
    page faults (a page reclaimed by the kernel, read back while the thread waits)."""

    KEPT = 5

    def __init__(self, progress: Callable[[], int]) -> None:
        from PySide6.QtCore import QElapsedTimer, QTimer

        self.progress = progress
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[tuple[Any, ...]] = []
        """The worst (gap ms, at ms, progress then, then the columns of :data:`GAP_COLUMNS`), a heap."""
        self._last = 0
        self._threads: _Threads | None = None
        self._sched: Sched = {}
        self._stolen = self._faults = float("nan")

    def start(self) -> None:
        self.stop()
        self._threads = _Threads()
        self._sched, self._stolen = self._threads.read(), self._threads.stolen_ms()
        self._faults = self._threads.major_faults()
        self.clock.start()
        self._last = 0
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()
        if self._threads is not None:
            self._threads.close()
            self._threads = None

    def _tick(self) -> None:
        now = self.clock.elapsed()
        assert self._threads is not None
        sched, stolen, faults = self._threads.read(), self._threads.stolen_ms(), self._threads.major_faults()
        where = (*_where(self._sched, sched, self._threads), stolen - self._stolen, faults - self._faults)
        gap = (now - self._last, now, self.progress(),
               *(round(value, 1) if isinstance(value, float) else value for value in where))
        if len(self.gaps) < self.KEPT:
            heapq.heappush(self.gaps, gap)
        elif gap > self.gaps[0]:
            heapq.heapreplace(self.gaps, gap)
        self._last, self._sched, self._stolen, self._faults = now, sched, stolen, faults

    @property
    def longest(self) -> float:
        return float(max(gap[0] for gap in self.gaps)) if self.gaps else 0.0

    def worst(self) -> list[tuple[Any, ...]]:
        return sorted(self.gaps)


@contextlib.contextmanager
def _window() -> Iterator[tuple[Any, Any]]:
    """The app's window, offscreen, on an empty workspace and config folder of its own."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["POLICYLEDGER_CONFIG_DIR"] = str(Path(tmp) / "cfg")
        os.environ["XDG_CONFIG_HOME"] = str(Path(tmp) / "xdg")
        from PySide6.QtWidgets import QApplication

        from app.main_window import MainWindow

        app = QApplication.instance() or QApplication(sys.argv[:1])
        window = MainWindow(workspace=Path(tmp) / "ws")
        window.resize(1280, 820)
        window.show()
        gc.freeze()  # as app.main does once the window is built
        yield app, window


def bench_responsiveness(overlays: int = 0) -> Iterator[Figure]:
    with _window() as (app, window):
        tab = window.training_tab
        tab.form.preset.setCurrentText("short-burst")
        tab.form.until_stopped.setChecked(True)
        _overlay_runs(tab, overlays)
        for _ in range(20):  # the first paint of the window is start-up, not training
            app.processEvents()
        probe = StallProbe(lambda: tab.plots.history.through)
        tab.start()
        probe.start()
        while tab.plots.history.through < HISTORY:
            app.processEvents()
        # Refreshes counted for a while once HISTORY episodes are plotted, training going on at full speed.
        window_start = (time.perf_counter(), tab.plots.refreshes)
        while time.perf_counter() - window_start[0] < MEASURE_SECONDS:
            app.processEvents()
        elapsed = time.perf_counter() - window_start[0]
        refresh_rate = (tab.plots.refreshes - window_start[1]) / elapsed
        plotted = tab.plots.points
        probe.stop()
        tab.stop()
        while tab.running:
            app.processEvents()
        window.close()
    print(f"# longest gaps ({GAP_COLUMNS.format(progress='episodes')}):", probe.worst(), file=sys.stderr)
    suffix = f"_with_{overlays}_overlays" if overlays else ""
    yield figure(f"ui_longest_stall_ms{suffix}", probe.longest, "ms", reference=5.0, target=50.0,
                 higher_is_better=False, reference_name="probe interval",
                 history_episodes=HISTORY, overlaid_runs=overlays)
    yield figure(f"plot_refreshes_per_s_at_100k{suffix}", refresh_rate, "refreshes/s", target=20.0,
                 reference=1000.0 / 33, reference_name="refresh timer rate (33 ms)", overlaid_runs=overlays,
                 points_drawn_at_the_end=plotted)


def bench_responsiveness_overlays() -> Iterator[Figure]:
    """The same run with 5 earlier runs of HISTORY episodes each overlaid from the runs list."""
    return bench_responsiveness(overlays=5)


def bench_sweep_responsiveness() -> Iterator[Figure]:
    """The Sweeps tab while a sweep of 120 runs of 30,000 episodes finishes run after run."""
    with _window() as (app, window):
        window.tabs.setCurrentIndex(3)
        tab = window.sweeps_tab
        form = tab.form
        form.tick_presets({"standard", "short-burst"})
        form.settings[0][1].setText("0.3, 0.6, 1.0")
        form.seeds.setValue(20)
        for _ in range(20):
            app.processEvents()
        probe = StallProbe(lambda: len(tab.outcomes))
        tab.start()
        while not tab.outcomes and tab.running:  # the child process and its pool start up first
            app.processEvents()
        probe.start()
        started = time.perf_counter()
        while tab.running:
            app.processEvents()
        seconds = time.perf_counter() - started
        probe.stop()
        runs = len(tab.outcomes)
        window.close()
    print(f"# longest gaps ({GAP_COLUMNS.format(progress='runs done')}):", probe.worst(), file=sys.stderr)
    yield figure("ui_longest_stall_ms_during_a_sweep", probe.longest, "ms", reference=5.0, target=50.0,
                 higher_is_better=False, reference_name="probe interval", runs=runs,
                 runs_per_s=round(runs / seconds, 1))


BENCHMARKS = {
    "app_startup": bench_startup,
    "app_responsiveness": bench_responsiveness,
    "app_responsiveness_overlays": bench_responsiveness_overlays,
    "app_sweep_responsiveness": bench_sweep_responsiveness,
}
