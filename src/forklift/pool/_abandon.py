"""Giving up on a scope's tasks: queued ones go at once, running ones get a short grace.

When a call is abandoned (its consumer closed its generator, its ``with`` block ended, an
error stopped it), the pool cancels the call's :class:`~.sharing.SharingScope`:

* tasks still queued in the pool are dropped and their futures cancelled;
* tasks a worker holds are given up at once too - their futures fail with
  ``CancelledError`` - but the worker is only *drained*: it takes no new task, a replacement
  starts for the work waiting behind, and if it finishes the abandoned tasks within the grace
  it rejoins the pool (or leaves, when the replacement already filled its place); past the
  grace it is killed (its own process group) and tasks of other scopes that it held go back
  to the queue.

Why a grace rather than killing at once: a killed worker loses what it had imported and
cached (a scikit-learn import alone takes a second) and a task about to end wastes nothing
by ending. Why not wait longer: the replacement oversubscribes the cores while both run.

The pool's bookkeeping of what was abandoned lives here (:class:`Drains`); the pool applies
it under its lock. Imports only the standard library and the pool's records.
"""

from __future__ import annotations

from collections.abc import Iterable

from forklift.pool._records import Task, Worker, WorkerState

__all__ = ["Drains"]


class Drains:
    """Workers finishing abandoned tasks, with the time each must be done by.

    The abandoned tasks stay in their worker's ``in_flight`` (so the pool still knows, in
    order, what the worker runs); their ids are kept here so that their results, when they
    come, are dropped rather than delivered.
    """

    def __init__(self) -> None:
        self._deadlines: dict[int, float] = {}  # worker id -> kill it if still busy then
        self._abandoned: set[int] = set()  # task ids

    def begin(self, worker: Worker, tasks: Iterable[Task], deadline: float) -> None:
        """``worker`` holds abandoned ``tasks``: it takes no new task until they are done."""
        self._abandoned.update(task.task_id for task in tasks)
        self._deadlines.setdefault(worker.worker_id, deadline)
        worker.advance(WorkerState.DRAINING)

    def is_abandoned(self, task: Task) -> bool:
        return task.task_id in self._abandoned

    def task_ended(self, worker: Worker, task: Task) -> bool:
        """A task of ``worker`` ended; True when that ended the worker's drain (it holds no
        abandoned task any more)."""
        self._abandoned.discard(task.task_id)
        if worker.worker_id not in self._deadlines:
            return False
        if any(held.task_id in self._abandoned for held in worker.in_flight):
            return False
        del self._deadlines[worker.worker_id]
        worker.end_drain()
        return True

    def forget(self, worker: Worker) -> None:
        """``worker`` is gone: forget its drain and the abandoned tasks it held."""
        self._deadlines.pop(worker.worker_id, None)
        for task in worker.in_flight:
            self._abandoned.discard(task.task_id)

    def expired(self, now: float) -> list[int]:
        """Ids of the workers still draining past their deadline (to be killed)."""
        late = [worker_id for worker_id, deadline in self._deadlines.items() if deadline <= now]
        for worker_id in late:
            del self._deadlines[worker_id]
        return late

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def __bool__(self) -> bool:
        return bool(self._deadlines)
