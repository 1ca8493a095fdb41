"""Changes asked of the pool by callers that must never wait for its lock.

Giving up a call's tasks (:meth:`~.executor.ProcessPool.cancel_scope`), releasing its scope,
or ``shutdown(wait=False)`` may be asked from a finalizer: a generator of results that the
garbage collector closes, on whatever thread happens to allocate - possibly a thread that
holds the pool's lock at that moment (the manager thread in the middle of dispatching, seen
deadlocking a pool at interpreter exit; or a caller inside ``submit``). The lock is not
re-entrant, and making it so would let the finalizer change the pool's state halfway
through someone's update. Instead a request is queued here (``SimpleQueue.put`` is safe even
in finalizers) and applied by whoever holds the lock next: the asker itself when the lock is
free, else the manager thread, which is woken for it and applies requests on every turn.

A request returns the tasks given up on, whose futures are cancelled (or failed with the
given error) by :func:`resolve` outside the lock, as their callbacks may submit more work.
The requests themselves are here too (:func:`cancel_scope`, :func:`release_scope`,
:func:`stop`), with :func:`cancel_task`, which gives up one task under the lock.

Imports only the standard library and the pool's books and records.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

from forklift.errors import TerminatedWorkerError
from forklift.pool._books import Books
from forklift.pool._records import Task, WorkerState, fail
from forklift.pool.sharing import SharingScope

__all__ = [
    "Outcome",
    "Request",
    "Requests",
    "cancel_scope",
    "cancel_task",
    "release_scope",
    "resolve",
    "stop",
]

Outcome = list[tuple[Task, BaseException | None]]  # (task, None: cancel it / error: fail it)
Request = Callable[[], Outcome]


class Requests:
    """The queue of requests of one pool, and the rule for applying them."""

    def __init__(self, lock: threading.Lock, wake: Callable[[], None]) -> None:
        self._lock = lock
        self._wake = wake
        self._queue: queue.SimpleQueue[Request] = queue.SimpleQueue()

    def ask(self, request: Request, then: Callable[[], None]) -> None:
        """Queue ``request``; apply it now if the lock is free (then call ``then``, with the
        lock held, when it gave something up), else leave it to the manager thread."""
        self._queue.put(request)
        if not self._lock.acquire(blocking=False):
            self._wake()
            return
        try:
            outcome = self.apply()
            if outcome:
                then()
        finally:
            self._lock.release()
        resolve(outcome)

    def put(self, request: Request) -> None:
        """Queue ``request`` for the next :meth:`apply` (the caller will take the lock)."""
        self._queue.put(request)

    def apply(self) -> Outcome:
        """Apply every queued request; the caller holds the lock."""
        outcome: Outcome = []
        while not self._queue.empty():
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                break
            outcome.extend(request())
        return outcome


def resolve(outcome: Outcome) -> None:
    """Cancel or fail the futures of tasks given up on (outside the lock)."""
    for task, error in outcome:
        if error is not None:
            fail(task.future, error)
        elif not task.future.cancel():
            fail(task.future, CancelledError())  # a worker had it: it cannot be "cancelled"


def cancel_scope(books: Books, scope: SharingScope, kill_running: bool, grace: float) -> Outcome:
    """Give up the tasks of ``scope`` (see :meth:`.executor.ProcessPool.cancel_scope`)."""
    outcome: Outcome = []
    for task in [task for task in books.pending if task.scope is scope]:
        books.pending.remove(task)
        books.forget(task)
        outcome.append((task, None))
    if not kill_running:
        return outcome
    deadline = time.monotonic() + grace
    for worker in list(books.workers.values()):
        mine = [
            task
            for task in worker.in_flight
            if task.scope is scope and not books.drains.is_abandoned(task)
        ]
        if not mine:
            continue
        for task in mine:
            books.forget(task)
            outcome.append((task, None))
        if grace > 0 and worker.state is not WorkerState.KILLED and worker.dead_since is None:
            # Kept in its books, in order, until they end or the worker is killed.
            books.drains.begin(worker, mine, deadline)
            continue
        for task in mine:
            worker.in_flight.remove(task)
        books.kill(worker)
    return outcome


def release_scope(books: Books, scope: SharingScope) -> Outcome:
    """``scope`` is done: closed once no task of it is left."""
    books.scopes.release(scope)
    books.close_finished_scopes()
    return []


def stop(books: Books, cancel_futures: bool, kill_workers: bool) -> Outcome:
    """Shut down: give up queued tasks (``cancel_futures``) and kill workers (``kill_workers``)."""
    outcome: Outcome = []
    if cancel_futures or kill_workers:
        for task in books.pending:
            books.forget(task)
            outcome.append((task, None))
        books.pending.clear()
    if kill_workers:
        books.kill_all()
        for worker in books.workers.values():
            for task in worker.in_flight:
                error = TerminatedWorkerError(
                    f"the pool was shut down with kill_workers=True while {task.label} ran"
                )
                outcome.append((task, error))
    return outcome


def cancel_task(books: Books, future: Future[Any]) -> None:
    """Give up the task of ``future`` (lock held): dropped if queued; if a worker runs it,
    that worker is killed; if a worker holds it queued, its result will be ignored."""
    for task in books.pending:
        if task.future is future:
            books.pending.remove(task)
            books.forget(task)
            return
    for worker in books.workers.values():
        for position, task in enumerate(worker.in_flight):
            if task.future is future:
                del worker.in_flight[position]
                books.forget(task)
                if position == 0:
                    books.kill(worker)
                return
