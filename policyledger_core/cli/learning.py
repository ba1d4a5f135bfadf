"""``policyledger-cli train`` and ``optimum``: learning from the command line.

``--preset`` names the cyber-defense task's environment presets; ``--task`` one of Gymnasium's
toy-text tasks (trained by :mod:`policyledger_core.learn.tabular` over the task's exact model,
replayed in Gymnasium, valued exactly). Gymnasium and the tabular kernel load only for a task.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, cast

from policyledger_core.cli.common import EXIT_OK, UsageError, emit, open_for_append
from policyledger_core.learn.engine import needs_compiling, train_agents
from policyledger_core.learn.hyper import DEFAULT_HYPER, Algorithm, Hyperparameters, hyper_preset
from policyledger_core.learn.single import TrainingResult
from policyledger_core.ledger.chain import LedgerError
from policyledger_core.policy import TaskPolicy
from policyledger_core.sim.config import EnvConfig, preset
from policyledger_core.sim.optimum import solve
from policyledger_core.tasks.base import fraction_of_optimum
from policyledger_core.tasks.spec import TaskInfo, task_info
from policyledger_core.verify.suite import BASELINES, DEFAULT_EPISODES, exact_baselines, reference
from policyledger_core.verify.tasks import verify_policy
from policyledger_core.workspace.publish import publish_run, save_policy

if TYPE_CHECKING:  # loaded when a task is trained: numba's kernel, Gymnasium's model
    from policyledger_core.learn.tabular import TabularTraining
    from policyledger_core.ledger.entry import Entry
    from policyledger_core.tasks.model import TabularModel
    from policyledger_core.tasks.toytext import ToyTextTask
    from policyledger_core.verify.suite import VerificationReport
    from policyledger_core.workspace.context import Context

DEFAULT_PRESET = "standard"
TASK_HYPER = "recommended"
"""A task's only hyperparameter preset: measured per task and algorithm (``learn.tabular``)."""
STATIONARY_NOTE = ("a table of one action per observation cannot always reach the optimum, "
                   "which may depend on the time left")


class Interrupt:
    """Ctrl-C stops work cooperatively (training, a sweep); what was done is kept."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def _progress_printer(total: int | None, out: TextIO) -> Callable[[int], None]:
    last = [time.monotonic()]

    def show(episode: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5:
            last[0] = now
            of = f"/{total}" if total else ""
            out.write(f"\rtraining: episode {episode + 1}{of}")
            out.flush()

    return show


def announce_compiling(err: TextIO) -> None:
    """Say so when the first run after install compiles the training kernel (a few seconds)."""
    if needs_compiling():
        err.write("compiling the training kernel (once after install, a few seconds)\u2026\n")
        err.flush()


def run_training(config: EnvConfig, hyper: Hyperparameters, algorithm: Algorithm, agents: int,
                 should_stop: Callable[[], bool],
                 on_episode: Callable[[int], None] | None = None) -> tuple[TrainingResult, float]:
    """Train to the end (or until stopped); returns the result and the training seconds."""
    start = time.perf_counter()
    gen = train_agents(config, hyper, algorithm, agents, should_stop)
    while True:
        try:
            batch = next(gen)
        except StopIteration as done:
            return done.value, time.perf_counter() - start
        if on_episode is not None:
            on_episode(batch.first + len(batch) - 1)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The hyperparameters ``--episodes`` and ``--seed`` replace."""
    changes: dict[str, Any] = {}
    if args.episodes is not None:
        changes["episodes"] = args.episodes
    if args.seed is not None:
        changes["seed"] = args.seed
    return changes


def cmd_train(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if getattr(args, "task", None) is not None:
        return _train_task(args, out, err)
    preset_name = args.preset or DEFAULT_PRESET
    hyper_name = args.hyper or DEFAULT_HYPER
    config = preset(preset_name)
    hyper = hyper_preset(hyper_name).replace(**_overrides(args))
    ctx = open_for_append(args)  # a bad workspace or a damaged ledger must not cost a training run
    interrupt = Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt.handle)
    show = _progress_printer(hyper.episodes, err) if err.isatty() else None
    announce_compiling(err)
    try:
        result, seconds = run_training(config, hyper, cast(Algorithm, args.algorithm), args.agents,
                                       interrupt, show)
    finally:
        signal.signal(signal.SIGINT, previous)
        if show is not None:
            err.write("\n")
    published = publish_run(ctx, result, "all" if args.chain_all else "best")
    best = published.best
    policy = best.policy
    report = best.report or verify_policy(policy)
    summary = _verified_summary(best.entry, best.created, published.entries_created, policy.hash, report) | {
        "training_reward": float(result.training_reward[result.best_agent]),
        "episodes": result.episodes,
        "env_steps": result.env_steps,
        "train_seconds": seconds,
        "agents": result.agents,
        "best_agent": result.best_agent,
        "algorithm": result.algorithm,
        "preset": preset_name,
        "hyper": hyper_name,
        "seed": hyper.seed,
        "stopped": result.stopped,
    }
    stopped = " (stopped early)" if result.stopped else ""
    rate = result.env_steps / max(seconds, 1e-9)
    emit(args, out, summary,
         f"trained {result.agents} agent(s), {result.episodes} episodes each{stopped}: "
         f"{result.env_steps} steps in {seconds:.2f} s ({rate:,.0f} steps/s)\n"
         f"policy          {policy.hash}\n"
         f"verified reward {report.mean:.2f} +/- {report.ci95:.2f} "
         f"(95% CI, {report.episodes} unseen episodes)\n"
         f"optimum         {report.optimum:.2f} on the same episodes -> {report.fraction_of_optimum:.1%}\n"
         f"training reward {summary['training_reward']:.2f} (mean of the last 100 training episodes)\n"
         + _recorded_lines(best.entry, best.created, ctx, report))
    return EXIT_OK


def _verified_summary(entry: Entry, created: bool, entries_created: int, policy_hash: str,
                      report: VerificationReport) -> dict[str, Any]:
    """The fields of ``train --json`` about the saved policy, its verification and its entry."""
    return {
        "entry_index": entry.index,
        "entry_hash": entry.hash,
        "new_entry": created,
        "entries_created": entries_created,
        "policy_hash": policy_hash,
        "verified_reward": report.mean,
        "ci95": report.ci95,
        "ci95_low": report.interval.low,
        "optimum": report.optimum,
        "optimum_expected": report.optimum_expected,
        "fraction_of_optimum": report.fraction_of_optimum,
        "suite": report.suite,
        "replay_digest": report.replay_digest,
        "baselines": report.baselines,
    }


def _recorded_lines(entry: Entry, created: bool, ctx: Context, report: VerificationReport) -> str:
    """``train``'s last lines: where the policy was recorded, and the best baseline to compare with."""
    return (f"ledger entry    {entry.index}{'' if created else ' (already recorded)'} "
            f"in {ctx.workspace.root}\n"
            f"best baseline   {_best_baseline(report.baselines)}\n")


def _best_baseline(baselines: dict[str, float]) -> str:
    name = max(baselines, key=lambda k: baselines[k])
    return f"{name} {baselines[name]:.2f}"


def cmd_optimum(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if getattr(args, "task", None) is not None:
        return _task_optimum(args, out)
    preset_name = args.preset or DEFAULT_PRESET
    config = preset(preset_name)
    ref = reference(config)
    exact = exact_baselines(config)
    data = {"preset": preset_name, "config": config.to_dict(), "optimum_expected": solve(config).value,
            "optimum": ref.optimum, "suite_episodes": DEFAULT_EPISODES,
            "baselines": ref.baselines, "baselines_expected": exact}
    emit(args, out, data,
         f"preset {preset_name}: optimal expected return {data['optimum_expected']:.3f} "
         f"(value iteration; {ref.optimum:.2f} on the {DEFAULT_EPISODES}-episode suite)\n"
         f"{'baseline':16s} {'suite mean':>10s} {'expected':>10s}\n"
         + "".join(f"{name:16s} {ref.baselines[name]:10.2f} {exact[name]:10.2f}\n" for name in BASELINES))
    return EXIT_OK


# --- Gymnasium's toy-text tasks ---------------------------------------------------------------


def _toy_text(info: TaskInfo) -> ToyTextTask:
    from policyledger_core.tasks.toytext import toy_text_task  # Gymnasium: only for a task

    return toy_text_task(info.spec.env_id)


def _stationary(task: ToyTextTask) -> tuple[float, float, str]:
    """The best stationary table's exact value (local search), its fraction of the optimum, and
    a few words on it."""
    value = task.best_stationary_value()
    fraction = fraction_of_optimum(value, task.optimum())
    note = STATIONARY_NOTE if fraction < 1.0 - 1e-9 else "a table reaches the optimum here"
    return value, fraction, note


def _on_disk(dispatcher: Any) -> bool:
    """Whether a numba function's compiled code waits in its disk cache (False when that cannot be
    told: a run may then say "compiling" and be quicker than announced)."""
    cache: Any = getattr(dispatcher, "_cache", None)
    locator: Any = getattr(getattr(cache, "_impl", None), "locator", None)
    index: Any = getattr(cache, "_cache_file", None)
    try:
        return bool(locator is not None and index is not None
                    and Path(locator.get_cache_path(), index._index_name).is_file())
    except (AttributeError, OSError, TypeError):
        return False


def prepare_tabular(err: TextIO) -> None:
    """Compile the tabular kernel, or load it from the disk cache, before a task's run is timed;
    says so when it compiles (once after install, a few seconds)."""
    from policyledger_core.learn import tabular

    kernel: Any = tabular._train
    if kernel.signatures:
        return
    if not _on_disk(kernel):
        err.write("compiling the training kernel (once after install, a few seconds)\u2026\n")
        err.flush()
    tabular.warm()


def run_task_training(model: TabularModel, horizon: int, hyper: Hyperparameters, algorithm: Algorithm,
                      should_stop: Callable[[], bool],
                      on_episode: Callable[[int], None] | None = None) -> tuple[TabularTraining, float]:
    """Train one tabular agent to the end (or until stopped, after at least one chunk of episodes);
    returns what it learned and the training seconds. The agent after N episodes is the agent of
    an N-episode run (:class:`~policyledger_core.learn.tabular.TabularRun`)."""
    from policyledger_core.learn.tabular import CHUNK_STEPS, TabularRun

    assert hyper.episodes is not None  # every task preset has a number of episodes
    start = time.perf_counter()
    run = TabularRun(model, horizon, hyper, algorithm)
    chunk = max(1, CHUNK_STEPS // horizon)
    while run.episodes < hyper.episodes:
        run.advance(min(chunk, hyper.episodes - run.episodes))
        if on_episode is not None:
            on_episode(run.episodes - 1)
        if run.episodes < hyper.episodes and should_stop():
            return run.result(stopped=True), time.perf_counter() - start
    return run.result(), time.perf_counter() - start


def _train_task(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.agents != 1:
        raise UsageError("--agents: populations are for the cyber-defense task (--preset); "
                         "--task trains one agent")
    if args.hyper not in (None, TASK_HYPER):
        raise UsageError(f"--hyper: a task has only the {TASK_HYPER!r} preset (measured per task)")
    from policyledger_core.learn.tabular import recommended

    info = task_info(args.task)
    algorithm = cast(Algorithm, args.algorithm)
    hyper = recommended(info.spec.env_id, algorithm).replace(**_overrides(args))
    ctx = open_for_append(args)  # a bad workspace or a damaged ledger must not cost a training run
    task = _toy_text(info)
    model = task.model()
    interrupt = Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt.handle)
    show = _progress_printer(hyper.episodes, err) if err.isatty() else None
    try:
        prepare_tabular(err)
        training, seconds = run_task_training(model, task.horizon, hyper, algorithm, interrupt, show)
    finally:
        signal.signal(signal.SIGINT, previous)
        if show is not None:
            err.write("\n")
    policy = TaskPolicy(info, tuple(int(a) for a in training.actions))
    training_reward = float(training.returns[-100:].mean())
    fields = {"algorithm": algorithm, "hyperparameters": hyper.to_dict(), "episodes": training.episodes,
              "seed": hyper.seed, "training_reward": training_reward, "agents": 1}
    try:
        saved = save_policy(ctx, policy, fields, {"kind": "trained"}, keep_file=True)
    except LedgerError as exc:
        raise LedgerError(f"{exc}. The policy is kept as {ctx.store.path_of(policy.hash)}") from None
    report = saved.report or verify_policy(policy)
    stationary, stationary_fraction, note = _stationary(task)
    summary = _verified_summary(saved.entry, saved.created, int(saved.created), policy.hash, report) | {
        "exact_value": report.expected,
        "best_stationary_value": stationary,
        "best_stationary_fraction": stationary_fraction,
        "training_reward": training_reward,
        "episodes": training.episodes,
        "env_steps": training.env_steps,
        "train_seconds": seconds,
        "agents": 1,
        "algorithm": algorithm,
        "task": info.spec.env_id,
        "task_title": info.title,
        "horizon": info.spec.horizon,
        "hyper": TASK_HYPER,
        "hyperparameters": hyper.to_dict(),
        "seed": hyper.seed,
        "stopped": training.stopped,
    }
    stopped = " (stopped early)" if training.stopped else ""
    rate = training.env_steps / max(seconds, 1e-9)
    emit(args, out, summary,
         f"trained 1 agent on {info.spec.env_id} ({info.title}), {training.episodes} episodes{stopped}: "
         f"{training.env_steps} steps in {seconds:.3f} s ({rate:,.0f} steps/s)\n"
         f"policy          {policy.hash}\n"
         f"verified reward {report.mean:.3f} +/- {report.ci95:.3f} "
         f"(95% CI, {report.episodes} unseen episodes replayed in Gymnasium)\n"
         f"exact value     {report.expected:.4f} (expected return within {info.spec.horizon} steps) "
         f"-> {report.fraction_of_optimum:.2%} of the optimum\n"
         f"optimum         {report.optimum_expected:.4f} (exact, finite-horizon value iteration)\n"
         f"best stationary {stationary:.4f} ({stationary_fraction:.2%} of the optimum): {note}\n"
         f"training reward {training_reward:.3f} (mean of the last 100 training episodes)\n"
         + _recorded_lines(saved.entry, saved.created, ctx, report))
    return EXIT_OK


def _task_optimum(args: argparse.Namespace, out: TextIO) -> int:
    info = task_info(args.task)
    task = _toy_text(info)
    optimum = task.optimum()
    stationary, stationary_fraction, note = _stationary(task)
    baselines = task.baselines()
    data = {"task": info.spec.env_id, "title": info.title, "spec": info.spec.to_dict(),
            "horizon": info.spec.horizon, "optimum_expected": optimum,
            "best_stationary_value": stationary, "best_stationary_fraction": stationary_fraction,
            "baselines_expected": {name: b.value for name, b in baselines.items()},
            "baselines": {name: b.description for name, b in baselines.items()},
            "n_observations": info.n_observations, "n_actions": info.n_actions,
            "action_names": list(info.action_names)}
    emit(args, out, data,
         f"task {info.spec.env_id} ({info.title}), horizon {info.spec.horizon} steps: optimal expected "
         f"return {optimum:.6f} (exact: finite-horizon value iteration on Gymnasium's own model)\n"
         f"best stationary table {stationary:.6f} ({stationary_fraction:.2%} of the optimum): {note}\n"
         f"{'baseline':10s} {'expected':>12s}\n"
         + "".join(f"{name:10s} {b.value:12.4f}  {b.description}\n" for name, b in baselines.items()))
    return EXIT_OK
