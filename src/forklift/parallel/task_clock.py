"""``task_timeout``'s clock: when each sent task started running, and which ran too long.

A task's clock starts when its future turns running (a worker took it), not when it was
sent: a cold worker's start-up is not the task's time. With ``task_timeout`` the engine sends
one task per batch and no more than there are workers, so a batch is a task and sent soon
means started; tasks not yet seen running are looked at again every
:data:`START_POLL_SECONDS` (a future says when it starts running only when asked).

Rejected: timing from the moment a task is sent (a worker's start-up or a slow hand-off
would count against the task), and a timer thread per task (threads for a rare event; the
engine already wakes for its other deadlines).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from typing import Any

__all__ = ["START_POLL_SECONDS", "TaskClock"]

# How often to look whether sent tasks have started running.
START_POLL_SECONDS = 0.05


class TaskClock:
    """Tracks, per in-flight batch index, since when its task has been running."""

    def __init__(self, task_timeout: float) -> None:
        self.task_timeout = task_timeout
        self._running_since: dict[int, float] = {}

    def next_deadline(self, in_flight: Mapping[int, Future[Any]], now: float) -> float:
        """When the engine must next look: the earliest running task's end of time, or the
        next poll for tasks not yet started."""
        earliest: float | None = None
        waiting = False
        for index, future in in_flight.items():
            since = self._running_since.get(index)
            if since is None:
                if not (future.running() or future.done()):
                    waiting = True
                    continue
                since = self._running_since[index] = now
            earliest = _earliest(earliest, since + self.task_timeout)
        if waiting:
            earliest = _earliest(earliest, now + min(START_POLL_SECONDS, self.task_timeout))
        return now + self.task_timeout if earliest is None else earliest

    def expired(self, in_flight: Iterable[tuple[int, Future[Any]]], now: float) -> list[int]:
        """The batches whose task has run ``task_timeout`` or longer and is not done; they
        are forgotten here (the engine gives them up)."""
        late = []
        for index, future in in_flight:
            since = self._running_since.get(index)
            if since is None or now - since < self.task_timeout or future.done():
                continue
            del self._running_since[index]
            late.append(index)
        return late

    def forget(self, index: int) -> None:
        """The batch completed (or was given up)."""
        self._running_since.pop(index, None)


def _earliest(first: float | None, second: float) -> float:
    return second if first is None else min(first, second)
