"""Automatic batch sizes: group tiny tasks so hand-off costs vanish, keep long tasks alone.

The engine measures how long each batch ran where it ran and feeds :class:`BatchSizer`;
:func:`next_batch_size` is the pure rule it applies, kept separate so it can be tested alone.

Rule: aim for batches that run ``target_seconds`` (a backend capability: small for threads,
larger for processes whose hand-off costs more). Growth is capped per step so one noisy,
too-fast measurement cannot jump straight to a huge batch; shrinking is immediate, so a
slow task is never stuck in a big batch for long.

How many batches to keep in flight is the other half (:func:`batches_in_flight`): a batch
sent beyond one per worker waits in a worker's queue behind a running one. That hides the
hand-off when batches are short (tiny tasks grouped to ``target_seconds``); before any
duration is measured, or when one task alone outlasts the target, it only ties a task that
may be fast behind one that may be slow - its result then waits for nothing (what
``return_as="generator_unordered"`` users see at once), and the cores may idle at the end.
"""

from __future__ import annotations

__all__ = ["MAX_GROWTH", "BatchSizer", "batches_in_flight", "next_batch_size"]

MAX_GROWTH = 16


def next_batch_size(
    current: int, seconds_per_task: float, target_seconds: float, max_size: int
) -> int:
    """The batch size to use next, given the measured cost of one task.

    >>> next_batch_size(1, 0.5, 0.05, 10_000)      # long tasks stay alone
    1
    >>> next_batch_size(1, 1e-6, 0.05, 10_000)     # tiny tasks grow, by at most 16x a step
    16
    >>> next_batch_size(256, 1e-3, 0.05, 10_000)   # 1 ms tasks: 50 make a 50 ms batch
    50
    """
    ideal = max_size if seconds_per_task <= 0 else int(target_seconds / seconds_per_task)
    ideal = min(ideal, current * MAX_GROWTH, max_size)
    return max(1, ideal)


def batches_in_flight(
    limit: int | None, n_workers: int, seconds_per_task: float | None, target_seconds: float
) -> int | None:
    """How many batches may be in flight: ``limit`` (from ``pre_dispatch``) only once tasks
    are known to be short; one per worker while their duration is unknown or long.

    >>> batches_in_flight(4, 2, None, 0.05)       # nothing measured yet: one per worker
    2
    >>> batches_in_flight(4, 2, 1e-4, 0.05)       # tiny tasks: queue ahead, hide hand-offs
    4
    >>> batches_in_flight(4, 2, 2.0, 0.05)        # long tasks: nothing gained by queueing
    2
    >>> batches_in_flight(None, 2, None, 0.05)    # pre_dispatch="all" is the user's choice
    """
    if limit is None:
        return None
    if seconds_per_task is None or seconds_per_task >= target_seconds:
        return max(1, min(limit, n_workers))
    return limit


class BatchSizer:
    """Keeps a smoothed estimate of seconds per task and proposes the next batch size."""

    def __init__(self, target_seconds: float, max_size: int = 100_000) -> None:
        self.target_seconds = target_seconds
        self.max_size = max_size
        self.size = 1
        self._seconds_per_task: float | None = None

    @property
    def seconds_per_task(self) -> float | None:
        """The smoothed estimate; None until a batch has been measured."""
        return self._seconds_per_task

    def observe(self, n_tasks: int, seconds: float) -> None:
        """Record that a batch of ``n_tasks`` ran for ``seconds``."""
        if n_tasks <= 0:
            return
        measured = seconds / n_tasks
        if self._seconds_per_task is None or measured > self._seconds_per_task:
            # Slower than thought: believe it at once, so long tasks are split up quickly.
            self._seconds_per_task = measured
        else:
            self._seconds_per_task = 0.5 * (self._seconds_per_task + measured)
        self.size = next_batch_size(
            max(self.size, n_tasks), self._seconds_per_task, self.target_seconds, self.max_size
        )
