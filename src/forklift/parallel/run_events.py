"""How a run is presented: its progress events, and a task's error re-raised in the caller
with its traceback and the failing call named.

The engine builds an event only when a reporter listens (``if hub:``), so none of this costs
a run that nobody watches. Counts that every event repeats travel as one :class:`Progress`.
"""

from __future__ import annotations

import time
from typing import NamedTuple, TypedDict

from forklift.errors import RemoteTraceback
from forklift.parallel.backends.base import Backend, Batch, BatchOutcome, describe_call
from forklift.pool.error_transport import attach_remote_traceback
from forklift.progress.events import (
    BatchCompleted,
    BatchDispatched,
    BatchFailed,
    Heartbeat,
    RunFinished,
    RunStarted,
)

__all__ = [
    "Progress",
    "batch_completed",
    "batch_dispatched",
    "failure_event",
    "heartbeat",
    "run_finished",
    "run_started",
    "task_ends",
    "task_error",
    "task_names",
]


class Progress(NamedTuple):
    """Where a run stands: tasks completed and dispatched, the total once the input is
    exhausted (else None), and seconds since the run started."""

    n_completed: int
    n_dispatched: int
    total: int | None
    elapsed: float


def run_started(
    backend: Backend, n_workers: int, n_jobs: int | None, expected_total: int | None
) -> RunStarted:
    return RunStarted(
        type(backend).__name__,
        n_workers,
        n_jobs,
        expected_total=expected_total,
        started=time.time(),
        backend_name=backend.name,
    )


def batch_dispatched(batch: Batch, progress: Progress) -> BatchDispatched:
    return BatchDispatched(
        batch_index=batch.index,
        first_task=batch.first_task,
        n_tasks=len(batch),
        n_dispatched=progress.n_dispatched,
        total=progress.total,
        dispatched=time.time(),
        elapsed=progress.elapsed,
    )


def batch_completed(
    batch: Batch, outcome: BatchOutcome, progress: Progress, timed: bool
) -> BatchCompleted:
    return BatchCompleted(
        n_tasks=len(batch),
        n_completed=progress.n_completed,
        n_dispatched=progress.n_dispatched,
        total=progress.total,
        elapsed=progress.elapsed,
        batch_index=batch.index,
        first_task=batch.first_task,
        **_how_it_ran(batch, outcome, timed),
    )


def heartbeat(progress: Progress) -> Heartbeat:
    return Heartbeat(
        n_completed=progress.n_completed,
        n_dispatched=progress.n_dispatched,
        total=progress.total,
        elapsed=progress.elapsed,
    )


def run_finished(
    progress: Progress, failed: bool, reason: str, restored: int, n_failed: int, n_retried: int
) -> RunFinished:
    return RunFinished(
        n_completed=progress.n_completed,
        total=progress.total,
        elapsed=progress.elapsed,
        error=failed,
        reason=reason,
        finished=time.time(),
        restored=restored,
        failed=n_failed,
        retried=n_retried,
    )


class _HowItRan(TypedDict):
    """The fields a completed and a failed batch's events both take from the outcome."""

    worker: str
    started: float
    finished: float
    task_ends: tuple[float, ...] | None
    task_names: tuple[str, ...] | None


def _how_it_ran(batch: Batch, outcome: BatchOutcome, timed: bool) -> _HowItRan:
    return {
        "worker": outcome.worker,
        "started": outcome.started,
        "finished": outcome.finished,
        "task_ends": task_ends(outcome),
        "task_names": task_names(batch) if timed else None,
    }


def task_ends(outcome: BatchOutcome) -> tuple[float, ...] | None:
    return None if outcome.task_ends is None else tuple(outcome.task_ends)


def task_names(batch: Batch) -> tuple[str, ...]:
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


def failure_event(
    batch: Batch, outcome: BatchOutcome, progress: Progress, timed: bool
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
        n_completed=progress.n_completed,
        elapsed=progress.elapsed,
        **_how_it_ran(batch, outcome, timed),
    )


def task_error(batch: Batch, outcome: BatchOutcome) -> BaseException:
    error = outcome.error
    assert error is not None
    call = batch.calls[outcome.error_task]
    task_number = batch.first_task + outcome.error_task
    where = f"task {task_number}, {describe_call(call)}(), on worker {outcome.worker}"
    if error.__traceback__ is None:
        # It came from another process: its traceback survives only as text (chained last,
        # after the causes that came with it).
        attach_remote_traceback(
            error, RemoteTraceback(f"Error in {where}:\n{outcome.error_traceback}")
        )
    note = f"[forklift] raised in {where}"
    add_note = getattr(error, "add_note", None)
    if add_note is not None and note not in getattr(error, "__notes__", ()):
        add_note(note)
    elif add_note is None and error.__cause__ is None:  # Python 3.10: no notes
        error.__cause__ = RemoteTraceback(f"Error in {where}:\n{outcome.error_traceback}")
    return error
