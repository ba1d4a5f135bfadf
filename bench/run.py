"""PolicyLedger benchmarks: ``python bench/run.py [NAME ...]``.

Prints one JSON line per figure: ``name``, ``value``, ``unit``, where there is
a target ``target`` and ``met``, and where a reference was measured in the
same run ``reference`` and ``ratio`` (value / reference). Figures are not
tests: the machine is shared and noisy, so read ratios first.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_app
import bench_engine
import bench_learning
import bench_ledger
import bench_soak
import bench_tasks

Figure = dict[str, Any]
BENCHMARKS: dict[str, Callable[[], Iterator[Figure]]] = {
    **bench_engine.BENCHMARKS,
    **bench_learning.BENCHMARKS,
    **bench_ledger.BENCHMARKS,
    **bench_app.BENCHMARKS,
    **bench_soak.BENCHMARKS,
    **bench_tasks.BENCHMARKS,
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"run.py: unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        start = time.perf_counter()
        for figure in BENCHMARKS[name]():
            print(json.dumps(figure), flush=True)
        print(f"# {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
