"""Retry policy: which failures are retried, how often, and after how long.

A policy is data (:class:`RetryPolicy`); :meth:`RetryPolicy.delay_before` is a pure function
of the attempt number, so the schedule can be tested without waiting. The engine keeps the
retries waiting for their time in a :class:`RetryQueue`. A worker that dies
under a task (:class:`~forklift.errors.TerminatedWorkerError`) and a task that runs past its
own time limit (:class:`~forklift.errors.TaskTimeoutError`) count as failures of that task.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
from collections.abc import Sequence

from forklift.errors import ConfigurationError
from forklift.parallel.backends.base import Call

__all__ = ["RetryPolicy", "RetryQueue", "as_retry_policy"]


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Retry a failed task up to ``attempts`` more times.

    Attributes:
        attempts: how many times a failed task is run again (0: never).
        on: exception types that are retried; others fail at once. Default: any exception.
        backoff: seconds before the first retry; each later retry waits ``factor`` times longer,
            up to ``max_backoff``, with +/- ``jitter`` (a fraction) so retries spread out.
    """

    attempts: int = 0
    on: tuple[type[BaseException], ...] = (Exception,)
    backoff: float = 0.0
    factor: float = 2.0
    max_backoff: float = 60.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if (
            isinstance(self.attempts, bool)
            or not isinstance(self.attempts, int)
            or self.attempts < 0
        ):
            raise ConfigurationError(
                f"retries must be a non-negative integer, got {self.attempts!r}"
            )
        for kind in self.on:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise ConfigurationError(f"retry_on must hold exception types, got {kind!r}")
        if self.backoff < 0 or self.factor < 1 or self.max_backoff < 0 or not 0 <= self.jitter < 1:
            raise ConfigurationError(
                "retry backoff must be >= 0 seconds, factor >= 1, jitter in [0, 1)"
            )

    def should_retry(self, error: BaseException, failures_so_far: int) -> bool:
        """True if a task that has failed ``failures_so_far`` times (this one included)
        should run again after ``error``."""
        return failures_so_far <= self.attempts and isinstance(error, self.on)

    def delay_before(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first)."""
        base = min(self.backoff * self.factor ** (retry_number - 1), self.max_backoff)
        if base == 0 or self.jitter == 0:
            return base
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1 + spread))


def as_retry_policy(
    retries: int | RetryPolicy,
    retry_on: type[BaseException] | Sequence[type[BaseException]] | None = None,
    retry_backoff: float = 0.0,
) -> RetryPolicy:
    """Build the policy from ``Parallel``'s ``retries``/``retry_on``/``retry_backoff``."""
    if isinstance(retries, RetryPolicy):
        return retries
    if retry_on is None:
        kinds: tuple[type[BaseException], ...] = (Exception,)
    elif isinstance(retry_on, type):
        kinds = (retry_on,)
    else:
        kinds = tuple(retry_on)
    return RetryPolicy(attempts=retries, on=kinds, backoff=retry_backoff)


class RetryQueue:
    """Calls waiting to run again, earliest first (ties in the order they failed)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Call]] = []
        self._order = itertools.count()

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, ready_at: float, task_index: int, call: Call) -> None:
        """Run ``call`` (task ``task_index``) again once ``time.perf_counter()`` reaches
        ``ready_at``."""
        heapq.heappush(self._heap, (ready_at, next(self._order), task_index, call))

    def next_ready_at(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> tuple[int, Call] | None:
        """The earliest retry whose time has come, as ``(task_index, call)``; else None."""
        if not self._heap or self._heap[0][0] > now:
            return None
        _, _, task_index, call = heapq.heappop(self._heap)
        return task_index, call
