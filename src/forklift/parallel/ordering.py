"""Results in input order: batches complete in any order, the consumer sees them in order.

A completed batch's results wait under their first task's position until every earlier
task's result has been handed over; then they leave, with any that waited behind them. With
``return_as="generator_unordered"`` they leave at once. Results move as whole lists (one per
batch, or per restored or failed task), never one by one: the cost is per batch, not per task.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ResultOrder"]


class ResultOrder:
    """Collects results by their first task's position; :attr:`ready` holds the lists that
    may be handed over, in order."""

    def __init__(self, ordered: bool) -> None:
        self.ordered = ordered
        self.ready: list[list[Any]] = []
        self._waiting: dict[int, list[Any]] = {}  # first task -> results, waiting for their turn
        self._next_task = 0

    def add(self, first_task: int, results: list[Any]) -> None:
        """The results of tasks ``first_task``, ``first_task + 1``, ..."""
        if not results:
            return
        if not self.ordered:
            self.ready.append(results)
            return
        waiting = self._waiting
        waiting[first_task] = results
        while self._next_task in waiting:
            chunk = waiting.pop(self._next_task)
            self._next_task += len(chunk)
            self.ready.append(chunk)

    def take(self) -> list[list[Any]]:
        """The lists ready to hand over, removed from :attr:`ready`."""
        ready, self.ready = self.ready, []
        return ready
