"""The engine: pull calls lazily, batch them, hand batches to a backend, collect results.

One run, as :func:`execute` drives it in the caller's thread::

    user iterable --take--> Batch --backend.submit--> Future[BatchOutcome]
          ^                                                  | done callback
          | refill up to max_in_flight                       v
          +------------------ caller waits on <-- completion queue (batch index)
                                                             |
                     results in input order (or as completed) v
                                                          consumer

* Input is pulled only to keep ``max_in_flight`` batches busy, so a generator of unknown or
  endless length works, and nothing more is pulled once the consumer stops.
* The first task error stops dispatch, aborts the backend's queued and running work, and
  re-raises the error with its own type, the worker's traceback chained as ``__cause__`` and
  a note naming the failing function.
* ``timeout`` bounds the whole run; ``KeyboardInterrupt`` while waiting aborts the same way.

The engine knows backends only through the :class:`~forklift.parallel.backends.base.Backend`
protocol and never looks inside one.
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from functools import partial
from typing import Any

from forklift.config import Settings
from forklift.errors import InvalidTaskError, ParallelTimeoutError, RemoteTraceback
from forklift.parallel.backends.base import Backend, Batch, BatchOutcome, Call, describe_call
from forklift.parallel.batching import BatchSizer
from forklift.progress.events import (
    BatchCompleted,
    BatchDispatched,
    BatchFailed,
    Heartbeat,
    Reporter,
    RunFinished,
    RunStarted,
)
from forklift.progress.hub import EventHub

__all__ = ["HEARTBEAT_SECONDS", "RunPlan", "TaskSource", "execute"]

# How often reporters hear from a run in which nothing completes (see Heartbeat).
HEARTBEAT_SECONDS = 1.0


@dataclasses.dataclass
class RunPlan:
    """Everything one run needs, decided by ``Parallel`` before the run starts.

    ``max_in_flight`` counts batches (None: no limit, pull the whole input at once);
    ``batch_size`` None means automatic sizing. ``expected_total`` is the input's ``len()``
    when it has one, for reporters.
    """

    backend: Backend
    n_workers: int
    n_jobs: int | None
    max_in_flight: int | None
    batch_size: int | None
    timeout: float | None
    ordered: bool
    worker_settings: Settings
    reporters: Sequence[Reporter] = ()
    expected_total: int | None = None


class TaskSource:
    """Pulls items from the user's iterable on demand and checks each is a call triple."""

    def __init__(self, tasks: Iterable[Any]) -> None:
        try:
            self._iterator = iter(tasks)
        except TypeError:
            raise InvalidTaskError(
                "Parallel(...) must be called with an iterable of delayed calls, e.g. "
                f"(delayed(f)(x) for x in xs); got {type(tasks).__name__}"
            ) from None
        self.n_taken = 0
        self.exhausted = False

    def take(self, n: int) -> list[Call]:
        """Up to ``n`` more calls; fewer (maybe none) once the iterable is exhausted."""
        items = list(itertools.islice(self._iterator, n))
        if len(items) < n:
            self.exhausted = True
        first = self.n_taken
        self.n_taken += len(items)
        for position, item in enumerate(items):
            # Fast path: what delayed() makes. Anything else goes through the full check.
            if not (
                type(item) is tuple
                and len(item) == 3
                and type(item[1]) is tuple
                and type(item[2]) is dict
                and callable(item[0])
            ):
                items[position] = _as_call(item, first + position)
        return items


def _as_call(item: Any, index: int) -> Call:
    if isinstance(item, tuple | list) and len(item) == 3:
        function, args, kwargs = item
        if callable(function) and isinstance(args, tuple | list) and isinstance(kwargs, dict):
            return (function, tuple(args), kwargs)
        problem = (
            f"its function {function!r} is not callable"
            if not callable(function)
            else "its args must be a tuple and its kwargs a dict"
        )
    else:
        problem = "it is not a (function, args, kwargs) triple"
    shown = repr(item)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise InvalidTaskError(
        f"item {index} of the task iterable is {shown} ({type(item).__name__}): {problem}. "
        "Each item must be delayed(function)(*args, **kwargs) or (function, args, kwargs)."
    )


def execute(plan: RunPlan, tasks: Iterable[Any]) -> Iterator[list[Any]]:
    """Run ``tasks`` per ``plan``; yield lists of results (in input order if ``plan.ordered``).

    The first item is always an empty list, yielded once the first batches are dispatched:
    taking it starts the work without waiting for any result. Closing the generator early
    (the consumer stopped) aborts what is in flight.
    """
    source = TaskSource(tasks)
    backend = plan.backend
    completions: queue.SimpleQueue[int] = queue.SimpleQueue()
    in_flight: dict[int, tuple[Batch, Future[BatchOutcome]]] = {}
    ready: dict[int, list[Any]] = {}
    next_to_yield = 0
    n_batches = n_completed = 0
    sizer = BatchSizer(backend.capabilities.batch_target_seconds)
    started = time.perf_counter()
    deadline = None if plan.timeout is None else started + plan.timeout
    # Events cost nothing when nobody listens: every emission below is guarded by `hub`.
    hub = EventHub(plan.reporters)
    timed = hub.needs_task_times
    if hub:
        hub.emit(
            RunStarted(
                type(backend).__name__,
                plan.n_workers,
                plan.n_jobs,
                expected_total=plan.expected_total,
                started=time.time(),
                backend_name=backend.name,
            )
        )
    failed = True
    reason = "closed early"
    started_work = False
    try:
        while True:
            while not source.exhausted and (
                plan.max_in_flight is None or len(in_flight) < plan.max_in_flight
            ):
                calls = source.take(plan.batch_size or sizer.size)
                if not calls:
                    break
                batch = Batch(
                    n_batches, source.n_taken - len(calls), calls, plan.worker_settings, timed
                )
                if hub:
                    hub.emit(
                        BatchDispatched(
                            batch_index=batch.index,
                            first_task=batch.first_task,
                            n_tasks=len(calls),
                            n_dispatched=source.n_taken,
                            total=source.n_taken if source.exhausted else None,
                            dispatched=time.time(),
                            elapsed=time.perf_counter() - started,
                        )
                    )
                future = backend.submit(batch)
                in_flight[batch.index] = (batch, future)
                future.add_done_callback(partial(_announce, completions, batch.index))
                n_batches += 1
            if not started_work:
                started_work = True
                yield []
            if not in_flight:
                break
            if hub:
                index = _next_completion_with_heartbeats(
                    completions, deadline, plan.timeout, n_completed, source, hub, started
                )
            else:
                index = _next_completion(completions, deadline, plan.timeout, n_completed, source)
            batch, future = in_flight.pop(index)
            outcome = future.result()
            if outcome.error is not None:
                if hub:
                    hub.emit(_failure_event(batch, outcome, n_completed, started, timed))
                raise _task_error(batch, outcome)
            if plan.batch_size is None:
                sizer.observe(len(batch), outcome.duration)
            n_completed += len(batch)
            if hub:
                hub.emit(
                    BatchCompleted(
                        n_tasks=len(batch),
                        n_completed=n_completed,
                        n_dispatched=source.n_taken,
                        total=source.n_taken if source.exhausted else None,
                        elapsed=time.perf_counter() - started,
                        worker=outcome.worker,
                        started=outcome.started,
                        finished=outcome.finished,
                        batch_index=batch.index,
                        first_task=batch.first_task,
                        task_ends=_task_ends(outcome),
                        task_names=_task_names(batch) if timed else None,
                    )
                )
            if not plan.ordered:
                yield outcome.results
                continue
            ready[index] = outcome.results
            while next_to_yield in ready:
                yield ready.pop(next_to_yield)
                next_to_yield += 1
        failed = False
        reason = ""
    except GeneratorExit:
        raise
    except BaseException as error:
        message = str(error)
        reason = f"{type(error).__name__}: {message}" if message else type(error).__name__
        raise
    finally:
        if in_flight:
            for _, pending in in_flight.values():
                pending.cancel()
            backend.abort()
        if hub:
            hub.emit(
                RunFinished(
                    n_completed=n_completed,
                    total=source.n_taken if source.exhausted else None,
                    elapsed=time.perf_counter() - started,
                    error=failed,
                    reason=reason,
                    finished=time.time(),
                )
            )


def _task_ends(outcome: BatchOutcome) -> tuple[float, ...] | None:
    return None if outcome.task_ends is None else tuple(outcome.task_ends)


def _task_names(batch: Batch) -> tuple[str, ...]:
    # A batch usually calls one function many times: name each function once.
    names: dict[int, str] = {}
    result = []
    for call in batch.calls:
        key = id(call[0])
        name = names.get(key)
        if name is None:
            name = names[key] = describe_call(call)
        result.append(name)
    return tuple(result)


def _failure_event(
    batch: Batch, outcome: BatchOutcome, n_completed: int, started: float, timed: bool
) -> BatchFailed:
    error = outcome.error
    assert error is not None
    message = str(error)
    if len(message) > 500:
        message = message[:497] + "..."
    return BatchFailed(
        batch_index=batch.index,
        first_task=batch.first_task,
        n_tasks=len(batch),
        failed_task=batch.first_task + outcome.error_task,
        task_name=describe_call(batch.calls[outcome.error_task]),
        error_type=type(error).__name__,
        error=message,
        n_completed=n_completed,
        elapsed=time.perf_counter() - started,
        worker=outcome.worker,
        started=outcome.started,
        finished=outcome.finished,
        task_ends=_task_ends(outcome),
        task_names=_task_names(batch) if timed else None,
    )


def _announce(completions: queue.SimpleQueue[int], index: int, _: Future[BatchOutcome]) -> None:
    completions.put(index)


def _next_completion(
    completions: queue.SimpleQueue[int],
    deadline: float | None,
    timeout: float | None,
    n_completed: int,
    source: TaskSource,
) -> int:
    if deadline is None:
        return completions.get()
    try:
        return completions.get(timeout=max(0.0, deadline - time.perf_counter()))
    except queue.Empty:
        raise ParallelTimeoutError(
            f"the Parallel call did not finish within timeout={timeout}s "
            f"({n_completed} of {source.n_taken} dispatched tasks done); "
            "raise timeout or pass timeout=None"
        ) from None


def _next_completion_with_heartbeats(
    completions: queue.SimpleQueue[int],
    deadline: float | None,
    timeout: float | None,
    n_completed: int,
    source: TaskSource,
    hub: EventHub,
    started: float,
) -> int:
    """:func:`_next_completion`, waking every ``HEARTBEAT_SECONDS`` while nothing finishes to
    tell the reporters the run is alive (a bar's clock moves; a CI log gets a line)."""
    while True:
        wait = HEARTBEAT_SECONDS
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - time.perf_counter()))
        try:
            return completions.get(timeout=wait)
        except queue.Empty:
            if deadline is not None and time.perf_counter() >= deadline:
                return _next_completion(completions, deadline, timeout, n_completed, source)
        hub.emit(
            Heartbeat(
                n_completed=n_completed,
                n_dispatched=source.n_taken,
                total=source.n_taken if source.exhausted else None,
                elapsed=time.perf_counter() - started,
            )
        )


def _task_error(batch: Batch, outcome: BatchOutcome) -> BaseException:
    error = outcome.error
    assert error is not None
    call = batch.calls[outcome.error_task]
    task_number = batch.first_task + outcome.error_task
    where = f"task {task_number}, {describe_call(call)}(), on worker {outcome.worker}"
    if error.__traceback__ is None and error.__cause__ is None:
        # It came from another process: its traceback survives only as text.
        error.__cause__ = RemoteTraceback(f"Error in {where}:\n{outcome.error_traceback}")
    note = f"[forklift] raised in {where}"
    add_note = getattr(error, "add_note", None)
    if add_note is not None and note not in getattr(error, "__notes__", ()):
        add_note(note)
    elif add_note is None and error.__cause__ is None:  # Python 3.10: no notes
        error.__cause__ = RemoteTraceback(f"Error in {where}:\n{outcome.error_traceback}")
    return error
