"""The pool's manager thread: one loop that listens to every channel and keeps the books moving.

Channels, each registered with the selector together with the method that reads it::

    wake pipe        _on_wake      a caller queued a request or shut the pool down
    listener         _on_connect   a new worker connects back (see _launcher.py)
    server reports   _on_reports   the fork server forked a worker, or one exited
    worker sockets   _on_worker    results, a worker asking to retire, an initializer error

Each turn of the loop has four phases (:meth:`Manager._run`):

1. **wait** - ``select()`` on all channels, with a timeout from the books' timers;
2. **read** - each ready channel's method reads it; results are set aside (``settled``);
3. **tend** (lock held) - apply the callers' requests (see _requests.py), the timers (exit
   reports overdue, drains past their grace, idle workers), dispatch, spawn, wind down;
4. **settle** (lock released) - resolve futures: their callbacks may submit more work.

A worker's result is set aside still pickled: it is unpickled in phase 4, outside the lock,
after the worker was handed its next task (phase 2 dispatches right after reading a result).

Rejected: handler names as selector data looked up with ``if``/``elif`` (one place more to
edit per channel, and a typo is a silent no-op); a thread per worker (2 threads and their
switches per worker, where one ``epoll`` serves them all).

Imports only the standard library and the pool's own modules.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import selectors
import threading
from collections.abc import Callable

from forklift.errors import RemoteTraceback, WorkerStartError
from forklift.pool import _protocol as protocol
from forklift.pool._books import Books
from forklift.pool._launcher import Launcher
from forklift.pool._records import Settled, SharedPayload, Worker, WorkerState, fail, settle
from forklift.pool._requests import Requests, resolve

__all__ = ["Manager"]

logger = logging.getLogger("forklift.pool")

Handler = Callable[[Settled], None]


class Manager:
    """The manager thread of one pool, with its selector and wake pipe."""

    def __init__(
        self,
        books: Books,
        launcher: Launcher,
        requests: Requests,
        on_closed: Callable[[], None],
    ) -> None:
        self._books = books
        self._launcher = launcher
        self._requests = requests
        self._on_closed = on_closed
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_read, selectors.EVENT_READ, self._on_wake)
        self._selector.register(launcher.listener, selectors.EVENT_READ, self._on_connect)
        self._watch_reports()
        self.thread = threading.Thread(target=self._run, name="forklift-pool-manager", daemon=True)
        books.start_worker = self.start_worker

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        if self._wake_write >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_write, b"\0")

    def start_worker(self, worker_id: int) -> bool:
        """Ask the fork server for a worker (a new server if it went away); lock held."""
        launcher = self._launcher
        if not launcher.server_running:
            # The fork server went away (its reports ended): start a new one.
            launcher.start_server()
            self._watch_reports()
        try:
            launcher.request_worker(worker_id)
        except OSError:
            # It died just now: start a new one for the next request.
            self._unwatch_reports()
            launcher.forget_server()
            return False
        return True

    def _watch_reports(self) -> None:
        self._unwatch_reports()
        self._selector.register(self._launcher.report_fd, selectors.EVENT_READ, self._on_reports)

    def _unwatch_reports(self) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._launcher.report_fd)

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        books = self._books
        try:
            while True:
                settled: Settled = []
                self._wait_and_read(settled)
                with books.lock:
                    requested = self._requests.apply()
                    finished = self._tend(settled)
                resolve(requested)
                settle(settled)
                if finished:
                    break
        except BaseException:  # pragma: no cover - a bug here must not hang every caller
            logger.exception("forklift pool manager crashed; failing pending tasks")
            with books.lock:
                books.broken = WorkerStartError("the forklift pool's manager thread crashed")
                tasks = list(books.tasks.values())
                books.tasks.clear()
                books.pending.clear()
                books.kill_all()
            for task in tasks:
                fail(task.future, books.broken)
        finally:
            self._close()

    def _wait_and_read(self, settled: Settled) -> None:
        for key, _ in self._selector.select(self._books.next_timeout()):
            handler: Handler = key.data
            handler(settled)

    def _tend(self, settled: Settled) -> bool:
        """Timers, dispatch, spawn; True once the pool has wound down (lock held)."""
        books = self._books
        books.check_timers(settled)
        books.dispatch()
        books.spawn()
        return books.wind_down()

    # -- the channels' handlers ---------------------------------------------------------------
    def _on_wake(self, settled: Settled) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_read, 4096)

    def _on_connect(self, settled: Settled) -> None:
        accepted = self._launcher.accept()
        if accepted is None:
            return
        connection, worker_id, pid = accepted
        with self._books.lock:
            worker = self._books.admit(worker_id, pid, connection)
            handler = functools.partial(self._on_worker, worker)
            self._selector.register(connection, selectors.EVENT_READ, handler)

    def _on_reports(self, settled: Settled) -> None:
        reports = self._launcher.read_reports()
        with self._books.lock:
            if reports is None:
                self._unwatch_reports()
                self._launcher.forget_server()
                self._books.server_gone(settled)
            else:
                self._books.heard(reports, settled)

    def _on_worker(self, worker: Worker, settled: Settled) -> None:
        """Read all that ``worker`` has sent (one result per message)."""
        books = self._books
        connection = worker.connection
        while True:
            try:
                kind, number, payload = protocol.receive(connection)
                received: bytes | memoryview | SharedPayload = payload
                if kind == protocol.RESULT_SHARED:
                    received = SharedPayload(bytes(payload), protocol.receive_fd(connection))
                    kind = protocol.RESULT_OK
            except (EOFError, OSError):
                with books.lock:
                    self._lost(worker, settled)
                return
            if kind in (protocol.RESULT_OK, protocol.RESULT_ERROR):
                with books.lock:
                    task = books.finish(worker, number)
                    books.dispatch()  # keep this worker busy before unpickling the result
                if task is not None:
                    settled.append((task, kind == protocol.RESULT_OK, received))
            elif kind == protocol.RETIRE:
                with books.lock:
                    worker.advance(WorkerState.RETIRING)
            elif kind == protocol.INIT_FAILED:
                text = bytes(payload).decode(errors="replace")
                error = WorkerStartError(
                    "the pool's initializer raised in a worker, so the pool cannot run tasks"
                )
                error.__cause__ = RemoteTraceback(text)
                with books.lock:
                    books.break_pool(error, settled)
            try:
                more = connection.poll(0)
            except (EOFError, OSError):
                more = True  # receive() will see the EOF
            if not more:
                return

    def _lost(self, worker: Worker, settled: Settled) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(worker.connection)
        self._books.socket_closed(worker, settled)

    def _close(self) -> None:
        books = self._books
        with books.lock:
            requested = self._requests.apply()
            workers = list(books.workers.values())
            books.workers.clear()
        resolve(requested)
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.connection.close()
        self._launcher.close()
        self._selector.close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_read = self._wake_write = -1
        self._on_closed()
        with books.lock:
            books.changed.notify_all()
