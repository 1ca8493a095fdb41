"""The events a parallel run emits, and the Reporter protocol that receives them."""

from __future__ import annotations

import dataclasses
from typing import Protocol

__all__ = ["BatchCompleted", "Event", "Reporter", "RunFinished", "RunStarted"]


@dataclasses.dataclass(frozen=True)
class RunStarted:
    """A ``Parallel`` call began on ``backend`` with ``n_workers`` workers."""

    backend: str
    n_workers: int
    n_jobs: int | None


@dataclasses.dataclass(frozen=True)
class BatchCompleted:
    """A batch of ``n_tasks`` tasks finished (successfully) on ``worker``.

    ``total`` is the number of tasks in the run once the input is exhausted, else None.
    ``started``/``finished`` are ``time.time()`` values taken where the batch ran.
    """

    n_tasks: int
    n_completed: int
    n_dispatched: int
    total: int | None
    elapsed: float
    worker: str
    started: float
    finished: float


@dataclasses.dataclass(frozen=True)
class RunFinished:
    """The run ended: ``error`` is True when it ended by an exception, timeout or interrupt."""

    n_completed: int
    total: int | None
    elapsed: float
    error: bool


Event = RunStarted | BatchCompleted | RunFinished


class Reporter(Protocol):
    """Receives a run's events in order, in the caller's thread."""

    def handle(self, event: Event) -> None: ...
