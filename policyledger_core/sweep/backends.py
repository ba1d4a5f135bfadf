"""Where a sweep's runs execute: a process pool on this machine, or a Ray cluster.

Both hand back ``(index, outcome or exception)`` as runs finish, and stop at once when asked:
runs not started are dropped, runs under way are abandoned, finished ones are kept.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from policyledger_core.errors import BadInput
from policyledger_core.sweep.plan import RunSpec
from policyledger_core.sweep.runs import RunOutcome, run_one

Finished = tuple[int, RunOutcome | Exception]
StopCheck = Callable[[], bool]
POLL_SECONDS = 0.1
RAY_EXTRA = "pip install 'policyledger[cluster]'"
BACKENDS = ("local", "ray")
WORKER_NICENESS = 10


class BackendUnavailable(BadInput, RuntimeError):
    """The backend cannot run here (Ray missing, or its cluster unreachable)."""


class Backend(Protocol):
    name: str
    workers: int

    def run(self, specs: Sequence[RunSpec], should_stop: StopCheck) -> Iterator[Finished]: ...


def default_workers() -> int:
    return os.cpu_count() or 1


class LocalBackend:
    """A pool of ``workers`` processes on this machine (every core by default)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or default_workers())

    def run(self, specs: Sequence[RunSpec], should_stop: StopCheck) -> Iterator[Finished]:
        if not specs:
            return
        done: queue.Queue[Finished] = queue.Queue()
        # spawn: safe beside threads (the app's, the engine's); each worker loads the kernel once.
        pool = mp.get_context("spawn").Pool(min(self.workers, len(specs)), initializer=_worker_start)
        try:
            for index, spec in enumerate(specs):
                pool.apply_async(run_one, (spec,), callback=_putter(done, index),
                                 error_callback=_putter(done, index))
            for _ in range(len(specs)):
                item = _next(done, should_stop)
                if item is None:
                    return
                yield item
        finally:
            pool.terminate()  # a stopped sweep leaves nothing running
            pool.join()


class RayBackend:
    """Each run a Ray task: on the cluster at ``address``, or on a local instance started here
    (or the one this process already joined)."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.address = address
        self.workers = max(1, workers or default_workers())

    def run(self, specs: Sequence[RunSpec], should_stop: StopCheck) -> Iterator[Finished]:
        try:
            import ray
        except ImportError:
            raise BackendUnavailable(f"--backend ray needs Ray: {RAY_EXTRA}") from None
        started = False
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, num_cpus=None if self.address else self.workers,
                         include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local instance"
                raise BackendUnavailable(f"--backend ray: cannot start or join {where}: "
                                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                                         ) from None
            started = True
        try:
            task = ray.remote(num_cpus=1, max_retries=0)(run_one)
            pending: dict[Any, int] = {task.remote(spec): i for i, spec in enumerate(specs)}
            while pending:
                if should_stop():
                    for ref in pending:
                        ray.cancel(ref, force=True)
                    return
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    index = pending.pop(ref)
                    try:
                        yield index, ray.get(ref)
                    except Exception as exc:
                        yield index, _exception(getattr(exc, "cause", None) or exc)
        finally:
            if started:
                ray.shutdown()


def _worker_start() -> None:
    """Ctrl-C reaches the whole process group: the sweep process decides, its workers do not.
    Workers yield to the rest of the machine (a window stays smooth while they use every core)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)


def _putter(done: queue.Queue[Finished], index: int) -> Callable[[Any], None]:
    """The pool's callback for run ``index``: its outcome or its exception, into ``done``."""
    def put(value: Any) -> None:
        done.put((index, value if isinstance(value, RunOutcome) else _exception(value)))

    return put


def _next(done: queue.Queue[Finished], should_stop: StopCheck) -> Finished | None:
    """The next finished run, or None once asked to stop."""
    while not should_stop():
        try:
            return done.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
    return None


def _exception(exc: BaseException) -> Exception:
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def backend(name: str, address: str | None = None, workers: int | None = None) -> Backend:
    """The backend ``name`` (``local`` or ``ray``)."""
    if name == "local":
        if address is not None:
            raise BackendUnavailable("--address: only with --backend ray")
        return LocalBackend(workers)
    if name == "ray":
        return RayBackend(address, workers)
    raise BackendUnavailable(f"--backend: must be one of {', '.join(BACKENDS)}, got {name!r}")
