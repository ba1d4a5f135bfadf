"""Run a sweep on a backend, keep what finished, and chain the policies asked for.

The ledger has one writer: the process that calls :func:`run_sweep` chains through the same
:func:`~policyledger_core.workspace.publish.publish_run` as ``train`` (a toy-text task's table:
:func:`~policyledger_core.workspace.publish.save_policy`, which replays it in Gymnasium first);
workers only train and verify.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from policyledger_core.ledger.chain import LedgerError
from policyledger_core.sweep.backends import Backend, StopCheck, backend
from policyledger_core.sweep.plan import RunSpec
from policyledger_core.sweep.runs import RunOutcome, TaskTable
from policyledger_core.sweep.summary import Group, groups
from policyledger_core.workspace.context import Context
from policyledger_core.workspace.publish import publish_run, save_policy

ChainMode = Literal["best", "all", "none"]
CHAIN_MODES = ("best", "all", "none")
Progress = Callable[[int, int, float], None]
"""``progress(done, total, elapsed_seconds)`` after each finished run."""


@dataclass
class SweepResult:
    """What a sweep did: its finished runs (in plan order), failures, groups and chained entries."""

    total: int
    runs: list[RunOutcome]
    failed: list[tuple[RunSpec, str]]
    chained: list[dict[str, Any]]
    backend: str
    wall_seconds: float
    stopped: bool
    groups: list[Group] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [r.row() for r in self.runs],
            "groups": [g.row() for g in self.groups],
            "chained": self.chained,
            "failed": [{s.kind: s.subject, "algorithm": s.algorithm, "seed": s.seed, "error": e}
                       for s, e in self.failed],
            "backend": self.backend,
            "wall_seconds": self.wall_seconds,
            "runs_planned": self.total,
            "stopped": self.stopped,
        }


def run_sweep(specs: Sequence[RunSpec], backend: Backend, chain: ChainMode = "best",
              ctx: Context | None = None, should_stop: StopCheck | None = None,
              progress: Progress | None = None) -> SweepResult:
    """Run every spec on ``backend``; chain into ``ctx`` (best per preset or task, all, or none)."""
    if chain not in CHAIN_MODES:
        raise ValueError(f"chain: must be one of {', '.join(CHAIN_MODES)}, got {chain!r}")
    if chain != "none" and ctx is None:
        raise ValueError("chain: a workspace is needed to chain policies")
    stop = should_stop or (lambda: False)
    start = time.perf_counter()
    finished: dict[int, RunOutcome] = {}
    failed: list[tuple[int, str]] = []
    best: dict[str, tuple[int, RunOutcome]] = {}  # the best run per preset or task, with its tables
    chained: list[dict[str, Any]] = []
    for index, outcome in backend.run(specs, stop):
        if isinstance(outcome, Exception):
            failed.append((index, f"{type(outcome).__name__}: {outcome}".splitlines()[0]))
        else:
            if chain == "all" and ctx is not None:
                chained.append(_chain(ctx, outcome))
            elif chain == "best":
                _keep_best(best, index, outcome)
            finished[index] = outcome.without_result()  # only the best keep their tables
        if progress is not None:
            progress(len(finished) + len(failed), len(specs), time.perf_counter() - start)
    if chain == "best" and ctx is not None:
        chained = [_chain(ctx, best[name][1]) for name in sorted(best)]
    runs = [finished[i] for i in sorted(finished)]
    return SweepResult(len(specs), runs, [(specs[i], e) for i, e in sorted(failed)], chained,
                       backend.name, time.perf_counter() - start, len(finished) + len(failed) < len(specs),
                       groups(runs))


def stream(specs: Sequence[RunSpec], backend_name: str, address: str | None = None,
           workers: int | None = None, should_stop: StopCheck | None = None
           ) -> Generator[tuple[int, RunOutcome | str], None, bool]:
    """Each run as it finishes: ``(index, outcome)``, or ``(index, error)`` in one line (what the
    app's sweep process sends back; the app chains). Returns whether it was stopped early."""
    runner = backend(backend_name, address, workers)
    finished = 0
    for index, outcome in runner.run(specs, should_stop or (lambda: False)):
        finished += 1
        yield index, (outcome if isinstance(outcome, RunOutcome)
                      else f"{type(outcome).__name__}: {outcome}".splitlines()[0])
    return finished < len(specs)


def chain_runs(ctx: Context, outcomes: Sequence[RunOutcome]) -> list[dict[str, Any]]:
    """Chain these runs' policies (each must still have its tables), in order."""
    return [_chain(ctx, outcome) for outcome in outcomes]


def best_per_preset(outcomes: Sequence[tuple[int, RunOutcome]]) -> list[RunOutcome]:
    """The best of ``(plan index, run)`` pairs for each preset (or task), as ``--chain best``
    picks them."""
    best: dict[str, tuple[int, RunOutcome]] = {}
    for index, outcome in outcomes:
        _keep_best(best, index, outcome)
    return [best[name][1] for name in sorted(best)]


def _keep_best(best: dict[str, tuple[int, RunOutcome]], index: int, outcome: RunOutcome) -> None:
    """Keep ``outcome`` as its preset's (or task's) best if it ranks above the one kept."""
    current = best.get(outcome.spec.subject)
    if current is None or _rank(index, outcome) > _rank(*current):
        best[outcome.spec.subject] = (index, outcome)


def _rank(index: int, run: RunOutcome) -> tuple[float, float, int]:
    """As the marketplace ranks: by the lower bound, then the mean (a task's run: its exact
    value); a tie goes to the run planned first (so the choice never depends on which run
    finished first)."""
    return run.lower, run.verified_reward, -index


def _chain(ctx: Context, outcome: RunOutcome) -> dict[str, Any]:
    if outcome.result is None:
        raise ValueError("chain: the run kept no tables")
    if isinstance(outcome.result, TaskTable):
        return _chain_table(ctx, outcome, outcome.result)
    published = publish_run(ctx, outcome.result, "best")
    entry = published.best.entry
    return {"preset": outcome.spec.preset, "algorithm": outcome.spec.algorithm, "seed": outcome.spec.seed,
            "policy_hash": published.best.policy.hash, "entry_index": entry.index,
            "new_entry": published.best.created}


def _chain_table(ctx: Context, outcome: RunOutcome, table: TaskTable) -> dict[str, Any]:
    """Chain a toy-text task's table as ``train --task`` does: replayed in Gymnasium, then recorded."""
    spec = outcome.spec
    policy = table.policy()
    training = {"algorithm": spec.algorithm, "hyperparameters": spec.hyper.to_dict(),
                "episodes": table.episodes, "seed": spec.seed, "training_reward": table.training_reward,
                "agents": 1}
    try:
        saved = save_policy(ctx, policy, training, {"kind": "trained"}, keep_file=True)
    except LedgerError as exc:
        raise LedgerError(f"{exc}. The policy is kept as {ctx.store.path_of(policy.hash)}; "
                          "after a repair, chain it with policyledger-cli add") from None
    report = saved.report
    return {"task": table.task_id, "algorithm": spec.algorithm, "seed": spec.seed,
            "policy_hash": policy.hash, "entry_index": saved.entry.index, "new_entry": saved.created,
            "verified_reward": None if report is None else report.mean,
            "ci95": None if report is None else report.ci95,
            "exact_value": outcome.exact_value, "fraction_of_optimum": outcome.fraction_of_optimum}
