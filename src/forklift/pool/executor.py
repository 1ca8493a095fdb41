"""forklift's process pool: a :class:`concurrent.futures.Executor` of its own making.

Data flow::

    caller thread(s)                          manager thread                 worker processes
    ----------------                          --------------                 ----------------
    submit(fn, *args)
      pickle (fn, args) ------> pending queue
      (functions -> scope tokens)   |  dispatch: to the least busy worker,
                                    |  at most `prefetch` tasks each; first
                                    v  the shared definitions it lacks
                                       (large ones: a memfd, mapped, not copied)
                              worker socket ================================> reader thread
                                                                                  |
                                                                             run task, pickle
    Future <-- set_result <-- unpickle <-- select() on all sockets <========== result
                                             also: new workers connecting,
                                             fork-server reports (exit status),
                                             timers (idle exit, crash reports)

Each worker has its own socket, so the pool always knows which tasks a worker holds, in order:
if it dies, the first of them is the one that was running (it fails with
:class:`~forklift.errors.TerminatedWorkerError` naming the signal or exit code and the
function), and the others, which never started, go back to the queue for other workers. The
pool itself stays usable; a replacement worker is forked when there is work for it.

Workers come from a fork server (see :mod:`._server`): a fresh interpreter that never runs the
user's ``__main__`` module, forked cheaply and safely even when the caller runs threads.

Both the caller threads and the manager thread dispatch (under one lock) so a task reaches an
idle worker without waiting for the manager to wake up. Futures are resolved outside the lock,
because their callbacks may submit more work.

Giving up work (:meth:`ProcessPool.cancel_scope`, :meth:`~ProcessPool.release_scope`,
``shutdown(wait=False)``) never waits for the lock: it may come from a finalizer that the
garbage collector runs on a thread holding the lock already - the manager thread included -
so it is queued as a request that whoever holds the lock next applies (see
:mod:`._requests`). Abandoned running tasks get a grace (see :mod:`._abandon`).

Where each part lives::

    executor.py   ProcessPool: the public API; takes the lock and calls the books
    _books.py     the books: pending tasks, workers and their states; dispatch, spawn, kill
    _manager.py   the manager thread: its selector, wake pipe and loop phases
    _requests.py  changes asked without waiting for the lock (cancel, release, shutdown)
    _launcher.py  the listening socket and the fork server (_server.py); _worker.py, the
                  worker's loop; _protocol.py, the wire between them
    options.py    WorkerOptions: what makes the workers alike
    sharing.py    scopes: functions sent once per worker, large ones through shared memory

This room uses explicit arguments only (it never reads :mod:`forklift.config`); it imports
only :mod:`forklift.errors`, :mod:`forklift._support` and the standard library + cloudpickle.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Executor, Future
from typing import Any

from forklift._support.cpus import cpu_count
from forklift.errors import ConfigurationError, TaskPicklingError, TempSpaceError
from forklift.pool import _requests as requests
from forklift.pool._books import EXIT_GRACE_SECONDS, STATUS_WAIT_SECONDS, Books
from forklift.pool._launcher import Launcher
from forklift.pool._manager import Manager
from forklift.pool._records import Task, WorkerState, describe, fail, run_chunk
from forklift.pool._requests import Requests, resolve
from forklift.pool.options import WorkerOptions, check_positive
from forklift.pool.sharing import SharingScope, pickle_task

__all__ = ["ProcessPool"]

logger = logging.getLogger("forklift.pool")

_live_pools: weakref.WeakSet[ProcessPool] = weakref.WeakSet()


class ProcessPool(Executor):
    """A pool of worker processes, usable alone or as forklift's ``"loky"`` backend.

    Args:
        max_workers: how many workers at most (default: :func:`forklift.cpu_count`). Workers
            start when there is work for them (or on :meth:`warm_up`).
        initializer, initargs: ``initializer(*initargs)`` runs in each worker before its
            first task; if it raises, the pool is broken (:class:`WorkerStartError`).
        env: environment variables set in each worker before it runs anything of the user's.
        max_tasks_per_child: a worker exits after this many tasks and a fresh one replaces
            it (for tasks that leak memory or other resources).
        idle_worker_timeout: seconds after which an idle worker exits (None: never).
        thread_limit: caps BLAS/OpenMP thread pools in each worker (environment variables
            set before anything is imported, plus threadpoolctl for libraries the fork server
            preloaded); None leaves them alone.
        memory_growth_limit: bytes of resident-memory growth (since a worker's first task)
            after which the worker is replaced once its current tasks are done.
        preload: modules the fork server imports before forking workers, so that they start
            with them loaded (numpy is also imported, while the server is idle, when the
            caller has imported it).
        prefetch: tasks handed to a worker ahead of time (1 = only when idle); never
            behind a task that has run over 20 ms (it may be a slow one).

    The worker options (all but ``idle_worker_timeout``, ``preload`` and ``prefetch``) are
    kept as one :class:`~forklift.pool.options.WorkerOptions`: :attr:`options`.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        env: Mapping[str, str] | None = None,
        max_tasks_per_child: int | None = None,
        idle_worker_timeout: float | None = None,
        thread_limit: int | None = None,
        memory_growth_limit: int | None = None,
        preload: Sequence[str] = (),
        prefetch: int = 2,
    ) -> None:
        if max_workers is None:
            max_workers = cpu_count()
        check_positive("max_workers", max_workers)
        options = WorkerOptions.from_arguments(locals())
        check_positive("prefetch", prefetch)
        if idle_worker_timeout is not None and not idle_worker_timeout > 0:
            raise ConfigurationError(
                f"idle_worker_timeout must be positive or None, got {idle_worker_timeout!r}"
            )
        self._books = Books(max_workers, options, idle_worker_timeout, prefetch)
        self._lock = self._books.lock
        self._preload = list(preload)
        # Heavy optional modules the caller uses: imported by the server when it is idle.
        self._idle_preload = ["numpy"] if "numpy" in sys.modules else []
        self._owner_pid = os.getpid()
        # Requests from callers that must not wait for the lock (see _requests.py).
        self._requests = Requests(self._lock, self._wake)
        self._launcher: Launcher | None = None
        self._manager: Manager | None = None
        self._thread: threading.Thread | None = None
        _live_pools.add(self)

    @classmethod
    def with_options(
        cls, max_workers: int | None, options: WorkerOptions, **settings: Any
    ) -> ProcessPool:
        """A pool whose workers get ``options``; ``settings``: the other keyword arguments."""
        return cls(max_workers, **options.keywords(), **settings)

    # -- public API ---------------------------------------------------------------------------
    @property
    def max_workers(self) -> int:
        return self._books.max_workers

    @property
    def options(self) -> WorkerOptions:
        """The options its workers start with."""
        return self._books.options

    @property
    def idle_worker_timeout(self) -> float | None:
        return self._books.idle_worker_timeout

    @idle_worker_timeout.setter
    def idle_worker_timeout(self, seconds: float | None) -> None:
        self._books.idle_worker_timeout = seconds

    @property
    def broken(self) -> bool:
        return self._books.broken is not None

    @property
    def n_workers(self) -> int:
        """Workers alive and taking tasks now."""
        with self._lock:
            return self._books.count_ready()

    def worker_pids(self) -> list[int]:
        """Process ids of the workers alive now (for tests and diagnostics)."""
        with self._lock:
            return [worker.pid for worker in self._books.workers.values()]

    def server_pid(self) -> int | None:
        """Process id of this pool's fork server, if it runs."""
        launcher = self._launcher
        server = launcher.server if launcher is not None else None
        return server.pid if server is not None else None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` in a worker; the future holds its result or error."""
        return self.submit_task(fn, args, kwargs)

    def submit_task(
        self,
        fn: Callable[..., Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        scope: SharingScope | None = None,
        label: str | None = None,
    ) -> Future[Any]:
        """:meth:`submit` with options: with ``scope``, the functions inside the task go to
        each worker once per scope (see :mod:`.sharing`); ``label`` names the task in error
        messages."""
        future: Future[Any] = Future()
        if label is None:
            label = describe(fn)
        try:
            payload, tokens = pickle_task(fn, args, kwargs, scope, label)
        except (TaskPicklingError, TempSpaceError) as error:
            future.set_exception(error)
            return future
        books = self._books
        with self._lock:
            self._check_usable()
            books.add(Task(next(books.task_ids), future, payload, tokens, scope, label))
            self._ensure_started()
            outcome = self._requests.apply()
            books.dispatch()
            books.spawn()
        resolve(outcome)
        return future

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        """Like :meth:`Executor.map`; ``chunksize`` > 1 sends that many calls per task."""
        check_positive("chunksize", chunksize)
        if chunksize == 1:
            return super().map(fn, *iterables, timeout=timeout)
        argument_tuples = iter(zip(*iterables, strict=False))
        chunks = iter(lambda: list(itertools.islice(argument_tuples, chunksize)), [])
        results = super().map(run_chunk, itertools.repeat(fn), chunks, timeout=timeout)
        return itertools.chain.from_iterable(results)

    def start_workers(self, n_workers: int | None = None) -> None:
        """Start workers now (up to ``n_workers``, default ``max_workers``) without waiting
        for them: they come up while the caller prepares its first tasks."""
        self.warm_up(n_workers, timeout=0)

    def warm_up(self, n_workers: int | None = None, timeout: float | None = 30.0) -> int:
        """Start workers now (up to ``n_workers``, default ``max_workers``) and wait for them.

        Returns how many workers are ready. Pays start-up ahead of the first real call.
        """
        books = self._books
        target = min(books.max_workers if n_workers is None else n_workers, books.max_workers)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._check_usable()
            self._ensure_started()
            books.warm_target = target
            books.spawn()
            while books.count_ready() < target and books.broken is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                books.changed.wait(remaining)
            books.warm_target = 0
            if books.broken is not None:
                raise books.broken
            return books.count_ready()

    def resize(self, max_workers: int) -> None:
        """Change the number of workers; busy workers beyond it leave once their work is done."""
        check_positive("max_workers", max_workers)
        books = self._books
        with self._lock:
            books.max_workers = max_workers
            accepting = [worker for worker in books.workers.values() if worker.accepts_tasks]
            excess = len(accepting) - max_workers
            if excess > 0:
                # Idle workers leave first, so that nobody's running task is in the way.
                accepting.sort(key=lambda worker: len(worker.in_flight))
                for worker in accepting[:excess]:
                    worker.advance(WorkerState.RETIRING)
                books.retire_idle()
            books.spawn()

    def add_preload(self, modules: Sequence[str]) -> None:
        """Modules for the fork server to preload (effective when it next starts)."""
        for name in modules:
            if name not in self._preload:
                self._preload.append(name)

    def set_thread_limit(self, thread_limit: int | None) -> None:
        """Cap BLAS/OpenMP threads in workers; workers started under another cap are replaced
        (idle ones now, busy ones once their tasks are done)."""
        books = self._books
        with self._lock:
            if thread_limit == books.options.thread_limit:
                return
            books.options = books.options.replace(thread_limit=thread_limit)
            for worker in books.workers.values():
                worker.advance(WorkerState.RETIRING)
            books.retire_idle()
            books.spawn()

    def cancel_future(self, future: Future[Any]) -> None:
        """Give up on one task: cancel it if queued; if its worker is running it, kill that
        worker (a replacement starts; tasks queued behind it run elsewhere). A task handed to
        a worker but not started yet is dropped from our books; its result will be ignored."""
        with self._lock:
            requests.cancel_task(self._books, future)
            self._books.spawn()
        if not future.cancel():
            fail(future, CancelledError())

    def cancel_scope(
        self, scope: SharingScope, *, kill_running: bool = True, grace: float = 0.0
    ) -> None:
        """Give up on the tasks of ``scope``: queued ones are cancelled; with
        ``kill_running``, so are those workers hold, and those workers are killed (their
        other tasks move to other workers) - at once, or, with ``grace`` seconds, only if
        they have not finished them by then (see :mod:`._abandon`).

        Never waits for the pool's lock, so it is safe in a finalizer, even one the garbage
        collector runs on a thread inside the pool: when the lock is taken, the manager
        thread applies the cancellation moments later.
        """
        request = functools.partial(requests.cancel_scope, self._books, scope, kill_running, grace)
        self._requests.ask(request, then=self._dispatch_and_spawn)

    def release_scope(self, scope: SharingScope) -> None:
        """``scope`` is done: workers drop its definitions once its tasks are finished.
        Never waits for the pool's lock (as :meth:`cancel_scope`)."""
        request = functools.partial(requests.release_scope, self._books, scope)
        self._requests.ask(request, then=self._dispatch_and_spawn)

    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = False, kill_workers: bool = False
    ) -> None:
        """Stop the pool: queued tasks still run unless ``cancel_futures``; ``kill_workers``
        kills the workers (and everything they started) at once instead of letting them
        finish. With ``wait=False`` it never waits for the pool's lock (as
        :meth:`cancel_scope`)."""
        self._books.shutdown = True
        request = functools.partial(requests.stop, self._books, cancel_futures, kill_workers)
        if wait:
            self._requests.put(request)
            with self._lock:
                outcome = self._requests.apply()
            resolve(outcome)
        else:
            self._requests.ask(request, then=self._dispatch_and_spawn)
        self._wake()
        thread = self._thread
        if thread is None:
            _live_pools.discard(self)
        elif wait and thread is not threading.current_thread():
            thread.join()

    # -- requests (see _requests.py): run by whoever holds the lock ------------------------
    def _dispatch_and_spawn(self) -> None:
        if self._thread is not None:
            self._books.dispatch()
            self._books.spawn()

    # -- internals ------------------------------------------------------------------------------
    def _check_usable(self) -> None:
        if os.getpid() != self._owner_pid:
            raise RuntimeError("a forklift ProcessPool cannot be used in a forked child process")
        if self._books.broken is not None:
            raise self._books.broken
        if self._books.shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _ensure_started(self) -> None:
        """Start the fork server and the manager thread (lock held)."""
        if self._thread is not None:
            return
        environment = self._books.options.server_environment(os.environ)
        self._launcher = Launcher(environment, self._preload, self._idle_preload)
        self._launcher.start_server()
        self._manager = Manager(self._books, self._launcher, self._requests, self._closed)
        self._thread = self._manager.thread
        self._manager.start()

    def _wake(self) -> None:
        manager = self._manager
        if manager is not None:
            manager.wake()

    def _closed(self) -> None:
        _live_pools.discard(self)

    def _kill_at_exit(self) -> None:
        """Last resort at interpreter exit: kill the workers, even if the lock is stuck (a
        bug elsewhere must not turn into a process that never exits)."""
        if self._lock.acquire(timeout=STATUS_WAIT_SECONDS):
            try:
                requests.stop(self._books, cancel_futures=True, kill_workers=True)
            finally:
                self._lock.release()
        else:
            logger.warning("the forklift pool's lock is stuck at exit; killing its workers")
            self._books.kill_all()
        self._wake()
        thread = self._thread
        if thread is not None:
            thread.join(STATUS_WAIT_SECONDS)

    def __repr__(self) -> str:
        books = self._books
        state = "broken" if books.broken else "shut down" if books.shutdown else "running"
        return f"ProcessPool(max_workers={books.max_workers}, {state})"


@atexit.register
def _shutdown_all_pools() -> None:
    """At interpreter exit: no worker, fork server or socket is left behind."""
    pools = list(_live_pools)
    for pool in pools:
        with contextlib.suppress(Exception):
            pool.shutdown(wait=False, cancel_futures=True)
    # Running tasks get a few seconds to finish; then their workers are killed, so that an
    # abandoned long task cannot hold the interpreter's exit hostage.
    deadline = time.monotonic() + EXIT_GRACE_SECONDS
    for pool in pools:
        thread = pool._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                with contextlib.suppress(Exception):
                    pool._kill_at_exit()
