"""The running task's context (its position in the input and the run's seed).

Set by the batch runner around each call, in whichever worker runs it; read by
:mod:`forklift.parallel.randomness`. A ContextVar, so threads and asyncio tasks each see
their own.
"""

from __future__ import annotations

import contextvars

__all__ = ["TaskContext", "current_task"]


class TaskContext:
    """Where a task stands: its position in the input and the run's seed (or None)."""

    __slots__ = ("index", "seed")

    def __init__(self, index: int, seed: int | None) -> None:
        self.index = index
        self.seed = seed


current_task: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "forklift_current_task", default=None
)
