"""How a run's batches are presented: progress events built from outcomes, and a task's
error re-raised in the caller with its traceback and the failing call named."""

from __future__ import annotations

import time

from forklift.errors import RemoteTraceback
from forklift.parallel.backends.base import Batch, BatchOutcome, describe_call
from forklift.pool.error_transport import attach_remote_traceback
from forklift.progress.events import BatchFailed

__all__ = ["failure_event", "task_ends", "task_error", "task_names"]


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
        task_ends=task_ends(outcome),
        task_names=task_names(batch) if timed else None,
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
