"""The Backend protocol: how the engine hands batches of calls to a parallel strategy.

A backend is anything with the handful of methods of :class:`Backend` plus a frozen
:class:`BackendCapabilities`. The engine only ever talks through them: it never probes a
backend with ``hasattr`` or ``isinstance``, and a backend never imports the engine.

Life of a backend, as the engine drives it::

    backend.start(n_workers)        -> workers ready (or lazily ready)
    backend.submit(batch)  *        -> Future[BatchOutcome]   (non-blocking)
    backend.abort()                 -> cancel queued batches, tell running ones to stop
    backend.stop(wait)              -> release the workers

A batch runs in a worker through :func:`run_batch`, which re-enters the caller's settings
snapshot (so nested ``Parallel`` calls see the right configuration), runs the calls in order
and reports either every result or the first error with its traceback as text - text, so it
survives pickling back from another process.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

from forklift._support.cpus import workers_for_n_jobs
from forklift._support.naming import callable_name
from forklift._support.task_context import TaskContext, current_task
from forklift.config import Settings, entered_settings
from forklift.errors import TaskPicklingError
from forklift.pool.error_transport import pack_error

__all__ = [
    "Backend",
    "BackendCapabilities",
    "Batch",
    "BatchOutcome",
    "Call",
    "ParallelBackendBase",
    "describe_call",
    "pack_outcome",
    "run_batch",
]

Call = tuple[Callable[..., Any], Sequence[Any], Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class BackendCapabilities:
    """What a backend can do; the engine and ``Parallel`` decide from these alone.

    Attributes:
        shares_memory: workers see the caller's objects (threads); ``require="sharedmem"``
            needs this.
        uses_processes: workers are other processes (arguments and results are pickled).
        persistent_workers: workers outlive one call, so ``with Parallel(...)`` reuses them.
        batch_target_seconds: how long an automatically sized batch should run: long enough
            to hide the cost of one hand-off to a worker, short enough to balance load.
        nested_backend: what a ``Parallel`` called inside one of this backend's workers uses
            when it names no backend itself.
        default_n_jobs: what ``n_jobs=None`` (not set anywhere) means for this backend: 1 for
            local backends (as in joblib), -1 - the whole cluster - for dask and ray.
        limits_inner_threads: the backend honours ``inner_max_num_threads`` (caps BLAS/OpenMP
            threads in its workers); ``parallel_config`` refuses the setting otherwise.
    """

    shares_memory: bool = False
    uses_processes: bool = False
    persistent_workers: bool = True
    batch_target_seconds: float = 0.05
    nested_backend: str = "sequential"
    default_n_jobs: int = 1
    limits_inner_threads: bool = False


@dataclasses.dataclass
class Batch:
    """Consecutive calls from the task iterable, sent to one worker together.

    ``record_task_times`` asks :func:`run_batch` to note when each call ends (a progress
    reporter such as the timeline trace wants them); off by default, as it costs a clock read
    per call. ``seed`` (from ``Parallel(seed=...)``) makes each call's position and the seed
    visible to :func:`forklift.task_rng` inside the call.
    """

    index: int
    first_task: int
    calls: list[Call]
    settings: Settings
    record_task_times: bool = False
    seed: int | None = None

    def __len__(self) -> int:
        return len(self.calls)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the calls as columns: the function once when every call has the same one
        (the usual ``delayed(f)(x) for x in xs``), and no keyword arguments when none has
        any. For 4,000 ``(abs, (i,), {})`` calls (quietest of many runs), pickling costs
        ~0.13 µs a call instead of ~0.17, and loading ~0.10 µs instead of ~0.17. The columns
        come from one ``zip(*calls)`` (20,000 calls: ~1.7 ms, against ~2.3 for a pass of
        ``map(itemgetter)`` per column)."""
        functions: Any
        functions, args, kwargs = zip(*self.calls, strict=True) if self.calls else ((), (), ())
        if functions and all(map(operator.is_, functions, itertools.repeat(functions[0]))):
            functions = functions[0]
        return (
            _rebuild_batch,
            (
                self.index,
                self.first_task,
                functions,
                args,
                kwargs if any(kwargs) else None,
                self.settings,
                self.record_task_times,
                self.seed,
            ),
        )


def _rebuild_batch(
    index: int,
    first_task: int,
    functions: Callable[..., Any] | Sequence[Callable[..., Any]],
    args: Sequence[Sequence[Any]],
    kwargs: Sequence[Mapping[str, Any]] | None,
    settings: Settings,
    record_task_times: bool,
    seed: int | None,
) -> Batch:
    """:meth:`Batch.__reduce__`'s inverse. Calls without keyword arguments share one empty
    dict: a call unpacks it (``f(*args, **kwargs)``) into a dict of its own."""
    n_calls = len(args)
    calls = list(
        zip(
            itertools.repeat(functions, n_calls) if callable(functions) else functions,
            args,
            itertools.repeat({}, n_calls) if kwargs is None else kwargs,
            strict=True,
        )
    )
    return Batch(index, first_task, calls, settings, record_task_times, seed)


@dataclasses.dataclass
class BatchOutcome:
    """What came back from running a batch: all results, or the first error.

    ``error_task`` is the position of the failing call within the batch. Timestamps are
    ``time.time()`` values so that outcomes from different processes share one clock.
    ``task_ends`` holds when each call ended (the failing one included), only when the batch
    asked for them with ``record_task_times``.
    """

    results: list[Any]
    error: BaseException | None = None
    error_traceback: str = ""
    error_task: int = -1
    started: float = 0.0
    finished: float = 0.0
    worker: str = ""
    task_ends: list[float] | None = None

    @property
    def duration(self) -> float:
        return max(0.0, self.finished - self.started)


@runtime_checkable
class Backend(Protocol):
    """A parallel strategy: runs batches somewhere and reports their outcomes."""

    name: str
    capabilities: BackendCapabilities

    def effective_n_jobs(self, n_jobs: int) -> int:
        """How many workers ``n_jobs`` means here (``n_jobs`` is already non-zero)."""
        ...

    def start(self, n_workers: int) -> None:
        """Make ``n_workers`` workers available; called before the first submit."""
        ...

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        """Queue ``batch``; the future resolves to its outcome or to a backend failure."""
        ...

    def abort(self) -> None:
        """Cancel queued batches and ask running ones to stop as soon as they can."""
        ...

    def abandon(self, future: Future[BatchOutcome]) -> None:
        """Give up on one running batch (it ran past ``task_timeout``): stop it if the
        backend can (kill its worker process), and keep the number of workers either way."""
        ...

    def stop(self, wait: bool = True) -> None:
        """Release the workers; with ``wait`` block until they are gone."""
        ...


class ParallelBackendBase:
    """A convenient base class for backends; subclass it and override what differs.

    Register a subclass with :func:`forklift.register_parallel_backend`. The defaults run
    nothing themselves: a subclass implements :meth:`submit`.

    Examples:
        A backend that runs each batch at once, in the caller's thread:

        >>> from concurrent.futures import Future
        >>> from forklift import Parallel, ParallelBackendBase, delayed
        >>> from forklift.parallel.backends.base import run_batch
        >>> class InThisThread(ParallelBackendBase):
        ...     name = "in-this-thread"
        ...     def submit(self, batch):
        ...         future = Future()
        ...         future.set_result(run_batch(batch))
        ...         return future
        >>> Parallel(n_jobs=2, backend=InThisThread())(delayed(pow)(i, 2) for i in range(4))
        [0, 1, 4, 9]
    """

    name = "custom"
    capabilities = BackendCapabilities()

    def __init__(self, **backend_params: Any) -> None:
        self.backend_params = backend_params

    def effective_n_jobs(self, n_jobs: int) -> int:
        return workers_for_n_jobs(n_jobs)

    def start(self, n_workers: int) -> None:
        self.n_workers = n_workers

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        raise NotImplementedError(f"{type(self).__name__} must implement submit(batch)")

    def abort(self) -> None:
        return None

    def abandon(self, future: Future[BatchOutcome]) -> None:
        future.cancel()

    def stop(self, wait: bool = True) -> None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def describe_call(call: Call) -> str:
    """A short name for a call, for messages: the function's qualified name."""
    return callable_name(call[0])


def pack_outcome(batch: Batch, outcome: BatchOutcome, dumps: Callable[[Any], bytes]) -> bytes:
    """Worker side: ``outcome`` as bytes for the caller (by ``dumps``), its error packed to
    travel intact; a result that does not pickle becomes a
    :class:`~forklift.errors.TaskPicklingError` naming the function - the one home of that
    rule for every backend whose workers pickle their outcomes."""
    if outcome.error is not None:  # its class, attributes and chain travel intact
        outcome.error = pack_error(outcome.error)
    try:
        return dumps(outcome)
    except Exception as reason:  # a result does not pickle (the error, packed, always does)
        return dumps(_unpicklable_result(batch, outcome, reason, dumps))


def _unpicklable_result(
    batch: Batch, outcome: BatchOutcome, reason: Exception, dumps: Callable[[Any], bytes]
) -> BatchOutcome:
    """The outcome that says which result could not be sent back: the batch's first failure
    (a result earlier in the batch than its error, which always pickles once packed)."""
    position = 0
    for position, result in enumerate(outcome.results):  # noqa: B007
        try:
            dumps(result)
        except Exception:
            break
    problem = TaskPicklingError(
        f"the result of {describe_call(batch.calls[position])}() could not be pickled to send "
        f"it back from the worker: {reason}"
    )
    return BatchOutcome(
        outcome.results[:position],
        error=problem,
        error_traceback=f"TaskPicklingError: {problem}\n",
        error_task=position,
        started=outcome.started,
        finished=outcome.finished,
        worker=outcome.worker,
    )


def run_batch(
    batch: Batch,
    should_stop: Callable[[], bool] | None = None,
    worker_of: str = "",
) -> BatchOutcome:
    """Run ``batch``'s calls in order inside a worker; never raises for a task's error.

    ``should_stop`` is polled between calls so an aborted run stops early; ``worker_of``
    names the backend whose worker this is, so nested ``Parallel`` calls can see it.
    """
    settings = batch.settings
    if worker_of and settings.worker_of != worker_of:
        settings = dataclasses.replace(settings, worker_of=worker_of)
    results: list[Any] = []
    outcome = BatchOutcome(results, started=time.time(), worker=_worker_name())
    if batch.record_task_times or batch.seed is not None:
        _run_instrumented(batch, settings, outcome, should_stop)
        return outcome
    with entered_settings(settings):
        for position, (function, args, kwargs) in enumerate(batch.calls):
            if should_stop is not None and should_stop():
                break
            try:
                results.append(function(*args, **kwargs))
            except BaseException as error:
                outcome.error = error
                outcome.error_task = position
                outcome.error_traceback = "".join(traceback.format_exception(error))
                break
    outcome.finished = time.time()
    return outcome


def _run_instrumented(
    batch: Batch,
    settings: Settings,
    outcome: BatchOutcome,
    should_stop: Callable[[], bool] | None,
) -> None:
    """:func:`run_batch`'s loop plus, as asked, a clock read after each call and the task's
    position and seed set around it - kept apart so the common loop pays nothing for them."""
    results = outcome.results
    timed = batch.record_task_times
    ends: list[float] = []
    if timed:
        outcome.task_ends = ends
    clock = time.time
    seed = batch.seed
    with entered_settings(settings):
        for position, (function, args, kwargs) in enumerate(batch.calls):
            if should_stop is not None and should_stop():
                break
            token = (
                None
                if seed is None
                else current_task.set(TaskContext(batch.first_task + position, seed))
            )
            try:
                results.append(function(*args, **kwargs))
            except BaseException as error:
                if timed:
                    ends.append(clock())
                outcome.error = error
                outcome.error_task = position
                outcome.error_traceback = "".join(traceback.format_exception(error))
                break
            finally:
                if token is not None:
                    current_task.reset(token)
            if timed:
                ends.append(clock())
    outcome.finished = ends[-1] if ends else clock()


def _worker_name() -> str:
    return f"{os.getpid()}:{threading.current_thread().name}"
