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

Imports only the standard library and the pool's records.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError

from forklift.pool._records import Task, fail

__all__ = ["Outcome", "Request", "Requests", "resolve"]

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
