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

The end of the input is the third (:func:`tail_batch_size`): a batch of ``target_seconds``
given to one worker as the last one leaves the others idle for up to that long (64 tasks of
20 ms in batches of 2 on 2 workers: up to 20 ms of 640). So the engine looks ahead one batch
per worker, and once it sees the input's end it splits what is left into
:data:`TAIL_SHARES` batches per worker - down to one task, or to
:data:`MIN_TAIL_BATCH_SECONDS` of work for short tasks, whose hand-offs would otherwise cost
more than the idle time they save.
"""

from __future__ import annotations

import math

__all__ = [
    "MAX_GROWTH",
    "MIN_TAIL_BATCH_SECONDS",
    "TAIL_QUEUE_SECONDS",
    "TAIL_SHARES",
    "BatchSizer",
    "batches_in_flight",
    "next_batch_size",
    "tail_batch_size",
]

MAX_GROWTH = 16
# The last calls are split into this many batches per worker, each of at least this long.
TAIL_SHARES = 2
# Measured (20,000 tiny tasks, 2 workers, interleaved runs): splitting the end of tiny tasks
# down to 0.5 ms batches cost more in hand-offs than it saved (caller CPU +13%, wall +40%
# against no split); 3 ms and 10 ms floors were alike, and leave tiny tasks unsplit.
MIN_TAIL_BATCH_SECONDS = 0.003
# At the input's end, tasks at least this long are not queued behind a busy worker: the
# pool commits a queued batch to one worker, which may be the one that frees up last, so
# the other idles for up to two tasks; unqueued, a last task goes to the first worker free,
# for one hand-off (~0.1-1 ms) of that worker's time.
TAIL_QUEUE_SECONDS = 0.001


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


def tail_batch_size(
    size: int, remaining: int, n_workers: int, seconds_per_task: float | None
) -> int:
    """The batch size once only ``remaining`` calls are left (see the module docstring).

    >>> tail_batch_size(2, 4, 2, 0.02)            # 20 ms tasks: the last ones go one by one
    1
    >>> tail_batch_size(50, 5_000, 2, 1e-3)       # the end is not near yet: unchanged
    50
    >>> tail_batch_size(8_000, 12_000, 2, 1e-5)   # short tasks: shares, not below 3 ms
    3000
    >>> tail_batch_size(8_000, 1_000, 2, 1e-5)
    300
    >>> tail_batch_size(8_000, 12_000, 2, 3e-7)   # tiny ones: no split, hand-offs cost more
    8000
    """
    share = math.ceil(remaining / (TAIL_SHARES * n_workers))
    floor = 1 if not seconds_per_task else math.ceil(MIN_TAIL_BATCH_SECONDS / seconds_per_task)
    return max(1, min(size, remaining, max(share, floor)))


def batches_in_flight(
    limit: int | None,
    n_workers: int,
    seconds_per_task: float | None,
    target_seconds: float,
    ending: bool = False,
) -> int | None:
    """How many batches may be in flight: ``limit`` (from ``pre_dispatch``) only once tasks
    are known to be short; one per worker while their duration is unknown or long - and at
    the ``ending`` of the input unless tasks are tiny (see :data:`TAIL_QUEUE_SECONDS`).

    >>> batches_in_flight(4, 2, None, 0.05)       # nothing measured yet: one per worker
    2
    >>> batches_in_flight(4, 2, 1e-4, 0.05)       # tiny tasks: queue ahead, hide hand-offs
    4
    >>> batches_in_flight(4, 2, 2.0, 0.05)        # long tasks: nothing gained by queueing
    2
    >>> batches_in_flight(4, 2, 0.02, 0.05, ending=True)   # the last 20 ms tasks: no queue
    2
    >>> batches_in_flight(4, 2, 1e-6, 0.05, ending=True)   # the last tiny ones: queue still
    4
    >>> batches_in_flight(None, 2, None, 0.05)    # pre_dispatch="all" is the user's choice
    """
    if limit is None:
        return None
    if (
        seconds_per_task is None
        or seconds_per_task >= target_seconds
        or (ending and seconds_per_task >= TAIL_QUEUE_SECONDS)
    ):
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
