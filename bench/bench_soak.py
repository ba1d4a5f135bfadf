"""Soak: the app training "until stopped" at full engine speed for minutes, offscreen.

Samples the window process's resident memory every 10 s, counts plot refreshes per 10 s and
probes the event loop every 5 ms; at the end it stops the run and times how long the policy
takes to be saved, verified and chained. ``POLICYLEDGER_SOAK_SECONDS`` shortens the run (a
check of the benchmark itself); the figures quoted come from the full 10 minutes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from bench_app import GAP_COLUMNS, StallProbe, _window
from bench_learning import Figure, figure

SOAK_SECONDS = float(os.environ.get("POLICYLEDGER_SOAK_SECONDS", "600"))
SAMPLE_SECONDS = 10.0
SHORT_SECONDS = 5.0
SETTLE_SECONDS = 60.0
"""Memory is judged after the first minute (the history fills up to its bound meanwhile)."""


def resident_mb() -> float:
    """This process's resident memory (Linux: /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(samples) < 2:
        return 0.0
    t, mb = np.array(samples).T
    return float(np.polyfit(t / 60.0, mb, 1)[0])


def _stop_and_time(app: Any, tab: Any) -> tuple[float, bool]:
    """Stop the run; seconds until its policy is saved, verified and chained (or the run failed)."""
    settled: list[float] = []
    tab.settled.connect(lambda: settled.append(time.perf_counter()))
    stopped = time.perf_counter()
    tab.stop()
    while not settled:
        app.processEvents()
    tab.settled.disconnect()
    return settled[0] - stopped, tab._run is not None and "\u00b1" in tab._run.verified


def _train_for(app: Any, tab: Any, seconds: float) -> None:
    tab.start()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        app.processEvents()


def soak(agents: int) -> Iterator[Figure]:
    with _window() as (app, window):
        tab = window.training_tab
        tab.form.preset.setCurrentText("short-burst")
        tab.form.agents.setValue(agents)
        tab.form.until_stopped.setChecked(True)
        for _ in range(20):
            app.processEvents()
        _train_for(app, tab, SHORT_SECONDS)  # the reference: stopping a short run
        short_stop, _ = _stop_and_time(app, tab)
        probe = StallProbe(lambda: tab.plots.history.through)
        tab.start()
        while tab.plots.history.through == 0:  # the child process starts and loads the kernel first
            app.processEvents()
        probe.start()
        start = time.perf_counter()
        samples: list[tuple[float, float]] = [(0.0, resident_mb())]
        rates: list[float] = []
        next_sample, refreshes = SAMPLE_SECONDS, tab.plots.refreshes
        while (now := time.perf_counter() - start) < SOAK_SECONDS:
            app.processEvents()
            if now >= next_sample:
                samples.append((now, resident_mb()))
                rates.append((tab.plots.refreshes - refreshes) / SAMPLE_SECONDS)
                refreshes, next_sample = tab.plots.refreshes, next_sample + SAMPLE_SECONDS
        probe.stop()
        episodes, points = tab.plots.history.through, tab.plots.points
        history_mb = tab.plots.history.nbytes / 2**20
        stop_seconds, chained = _stop_and_time(app, tab)
        window.close()
    early = [s for s in samples if s[0] <= SETTLE_SECONDS]
    late = [s for s in samples if s[0] >= SETTLE_SECONDS]
    print(f"# K={agents}: memory samples (s, MB):", [(round(t), round(mb, 1)) for t, mb in samples],
          file=sys.stderr)
    print(f"# K={agents}: refreshes per second per {SAMPLE_SECONDS:.0f} s:", [round(r, 1) for r in rates],
          file=sys.stderr)
    print(f"# K={agents}: longest gaps ({GAP_COLUMNS.format(progress='episodes')}):", probe.worst(),
          file=sys.stderr)
    common = {"agents": agents, "seconds": round(SOAK_SECONDS), "episodes": episodes}
    yield figure(f"soak_k{agents}_memory_slope_mb_per_min", slope_mb_per_min(late), "MB/min",
                 reference=slope_mb_per_min(early), target=1.0, higher_is_better=False,
                 reference_name="slope during the first minute (the history filling up)",
                 resident_mb_start=round(samples[0][1], 1), resident_mb_end=round(samples[-1][1], 1),
                 history_mb=round(history_mb, 2), points_drawn=points, **common)
    yield figure(f"soak_k{agents}_longest_stall_ms", probe.longest, "ms", reference=5.0, target=50.0,
                 higher_is_better=False, reference_name="probe interval", **common)
    yield figure(f"soak_k{agents}_fewest_refreshes_per_s", min(rates) if rates else 0.0, "refreshes/s",
                 reference=1000.0 / 33, target=20.0, reference_name="refresh timer rate (33 ms)",
                 per_interval_s=SAMPLE_SECONDS, **common)
    yield figure(f"soak_k{agents}_stop_to_chained_s", stop_seconds, "s", reference=short_stop,
                 reference_name=f"the same after a run of {SHORT_SECONDS:.0f} s", target=2.0 * short_stop,
                 higher_is_better=False, chained=chained, **common)


def bench_soak_k1() -> Iterator[Figure]:
    return soak(1)


def bench_soak_k64() -> Iterator[Figure]:
    return soak(64)


BENCHMARKS = {
    "soak_k1": bench_soak_k1,
    "soak_k64": bench_soak_k64,
}
