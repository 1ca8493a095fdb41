"""What an abandoned run tells its user: how many of the tasks it sent were cancelled.

A run is abandoned when its consumer stops before the end: its generator is closed or
deleted (or collected), or the ``with`` block of its ``Parallel`` ends, which stops the
backend under it. The backend drops the run's queued tasks and stops its running ones (see
:mod:`forklift.pool._abandon`); the engine then counts, once, the tasks of batches still in
flight that had not finished, and warns with
:class:`~forklift.errors.TasksCancelledWarning` as joblib does - quietly nothing when the
count is zero. A task's error is not an abandonment: the error itself is the report.

Imports only :mod:`forklift.errors` and the backend protocol's records.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from concurrent.futures import CancelledError, Future

from forklift.errors import ParallelStateError, TasksCancelledWarning
from forklift.parallel.backends.base import Batch, BatchOutcome

__all__ = ["count_unfinished", "stopped_under_the_run", "warn_cancelled"]


def count_unfinished(in_flight: Iterable[tuple[Batch, Future[BatchOutcome]]]) -> tuple[int, int]:
    """(tasks not finished - queued, running or cancelled under the run -, tasks finished
    whose results nobody read), over the batches still in flight."""
    cancelled = unused = 0
    for batch, future in in_flight:
        given_up = not future.done() or future.cancelled()
        if given_up or isinstance(future.exception(), CancelledError):
            cancelled += len(batch)
        else:
            unused += len(batch)
    return cancelled, unused


def warn_cancelled(n_cancelled: int, n_unused: int) -> None:
    """Warn that ``n_cancelled`` sent tasks were cancelled; nothing when there were none."""
    if n_cancelled <= 0:
        return
    message = (
        f"{_tasks(n_cancelled)} sent to workers {'was' if n_cancelled == 1 else 'were'} "
        "cancelled: the call's results were abandoned (its generator closed or deleted, or "
        "its with-block ended) before they were all consumed"
    )
    if n_unused:
        results = "its result was" if n_unused == 1 else "their results were"
        message += f"; {_tasks(n_unused)} had finished but {results} not used"
    message += ". Consume the results to the end, or pull fewer tasks ahead (pre_dispatch)."
    warnings.warn(TasksCancelledWarning(message), stacklevel=_first_frame_outside_forklift())


def stopped_under_the_run(n_completed: int) -> ParallelStateError:
    """The error for a run whose backend cancelled its work: its with-block ended."""
    return ParallelStateError(
        "this call's remaining tasks were cancelled because the with-block of its Parallel "
        f"ended before its results were consumed ({n_completed} tasks had been done); "
        "consume a generator inside the with-block that made it"
    )


def _tasks(count: int) -> str:
    return f"{count} task{'' if count == 1 else 's'}"


def _first_frame_outside_forklift() -> int:
    """The ``stacklevel`` that points a warning at the user's line (the one that closed or
    dropped the results), however deep forklift's own frames are."""
    frame = sys._getframe(1)  # warn_cancelled's own frame: stacklevel 1
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("forklift."):
        frame = frame.f_back
        level += 1
    return level
