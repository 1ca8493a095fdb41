"""The events a parallel run emits, and the Reporter protocol that receives them.

A run emits, in this order and always in the thread that consumes its results::

    RunStarted
    ( BatchDispatched | BatchCompleted | BatchFailed | Heartbeat )*
    RunFinished                                  (always, even after an error or early close)

Every batch is dispatched before it completes or fails; at most one ``BatchFailed`` comes
(the first task error stops the run). Timestamps named ``started``/``finished``/``dispatched``
are ``time.time()`` values - taken where the work ran, so workers in other processes share one
clock with the caller. ``elapsed`` is seconds since the run started, from a monotonic clock.

Worker ids are strings ``"<pid>:<thread name>"``: unique per worker thread or process.

Per-task timings (``task_ends``, ``task_names``) cost a clock read per task in the worker, so
they are recorded only when some reporter asks for them with a true ``needs_task_times``
attribute; otherwise they are None.

This module imports nothing from forklift.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

__all__ = [
    "BatchCompleted",
    "BatchDispatched",
    "BatchFailed",
    "Event",
    "Heartbeat",
    "Reporter",
    "RunFinished",
    "RunStarted",
]


@dataclasses.dataclass(frozen=True)
class RunStarted:
    """A ``Parallel`` call began.

    Attributes:
        backend: the backend's class name (``"ThreadingBackend"``), as verbose lines show it.
        n_workers: how many workers the run uses.
        n_jobs: the ``n_jobs`` the user asked for (None: the default).
        expected_total: ``len()`` of the task iterable when it has one, else None.
        started: ``time.time()`` when the run began.
        backend_name: the backend's registered name (``"threading"``).
    """

    backend: str
    n_workers: int
    n_jobs: int | None
    expected_total: int | None = None
    started: float = 0.0
    backend_name: str = ""


@dataclasses.dataclass(frozen=True)
class BatchDispatched:
    """Batch ``batch_index`` (tasks ``first_task`` .. ``first_task + n_tasks - 1``) was handed
    to the backend.

    ``n_dispatched`` counts tasks handed over so far; ``total`` is the run's task count once
    the input is exhausted, else None.
    """

    batch_index: int
    first_task: int
    n_tasks: int
    n_dispatched: int
    total: int | None
    dispatched: float
    elapsed: float


class _RanOnAWorker:
    """What the batch events say about the time a batch ran on its worker."""

    started: float
    finished: float

    @property
    def duration(self) -> float:
        """Seconds the batch ran on its worker (for a failed batch: up to the failure)."""
        return max(0.0, self.finished - self.started)


@dataclasses.dataclass(frozen=True)
class BatchCompleted(_RanOnAWorker):
    """A batch of ``n_tasks`` tasks finished successfully on ``worker``.

    Attributes:
        n_tasks: tasks in this batch.
        n_completed: tasks completed in the run so far, this batch included.
        n_dispatched: tasks handed to the backend so far.
        total: the run's task count once the input is exhausted, else None.
        elapsed: seconds since the run started.
        worker: the worker id that ran the batch.
        started, finished: when the batch began and ended on the worker.
        batch_index, first_task: which batch, and the index of its first task in the input.
        task_ends: when each task ended (a task starts when the previous one ends, the first
            at ``started``), or None when no reporter asked for per-task times.
        task_names: each task's function name, under the same condition.
    """

    n_tasks: int
    n_completed: int
    n_dispatched: int
    total: int | None
    elapsed: float
    worker: str
    started: float
    finished: float
    batch_index: int = 0
    first_task: int = 0
    task_ends: tuple[float, ...] | None = None
    task_names: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class BatchFailed(_RanOnAWorker):
    """A task raised: task ``failed_task`` (an index into the input) of batch ``batch_index``.

    The tasks of the batch before it completed (``task_ends`` covers them and the failing
    one, when recorded); the run stops after this event and re-raises the error.
    ``error_type`` is the exception's class name and ``error`` its message.
    """

    batch_index: int
    first_task: int
    n_tasks: int
    failed_task: int
    task_name: str
    error_type: str
    error: str
    n_completed: int
    elapsed: float
    worker: str
    started: float
    finished: float
    task_ends: tuple[float, ...] | None = None
    task_names: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Heartbeat:
    """Nothing completed for a while (about a second) but the run is alive and waiting.

    Lets a bar move its clock and a log-file reporter write a line during long tasks.
    """

    n_completed: int
    n_dispatched: int
    total: int | None
    elapsed: float


@dataclasses.dataclass(frozen=True)
class RunFinished:
    """The run ended.

    ``error`` is True when it ended by a task error, timeout, interrupt or because the
    consumer stopped early; ``reason`` then says which (``"ValueError: ..."``,
    ``"closed early"``...), else it is empty. ``restored`` counts tasks whose results came
    from a checkpoint, ``failed`` the failures kept in place of results
    (``on_error="return"``), ``retried`` the retries made.
    """

    n_completed: int
    total: int | None
    elapsed: float
    error: bool
    reason: str = ""
    finished: float = 0.0
    restored: int = 0
    failed: int = 0
    retried: int = 0


Event = RunStarted | BatchDispatched | BatchCompleted | BatchFailed | Heartbeat | RunFinished


class Reporter(Protocol):
    """Receives a run's events in order, in the caller's thread.

    ``handle`` should be quick: it runs between the engine's hand-offs. An exception it raises
    is logged (logger ``forklift.progress``) and does not stop the run. A reporter that wants
    per-task timings sets a class attribute ``needs_task_times = True``.
    """

    def handle(self, event: Event) -> None: ...
