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
so it is queued as a request that whoever holds the lock next applies. Abandoned running tasks
get a grace (see :mod:`._abandon`).

This room uses explicit arguments only (it never reads :mod:`forklift.config`); it imports
only :mod:`forklift.errors`, :mod:`forklift._support` and the standard library + cloudpickle.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import functools
import itertools
import logging
import os
import pickle
import selectors
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Executor, Future
from typing import Any

import cloudpickle

from forklift._support.cpus import cpu_count
from forklift.errors import (
    ConfigurationError,
    RemoteTraceback,
    TaskPicklingError,
    TempSpaceError,
    TerminatedWorkerError,
    WorkerStartError,
)
from forklift.pool import _protocol as protocol
from forklift.pool._abandon import Drains
from forklift.pool._launcher import Launcher, describe_exit_status
from forklift.pool._records import (
    SharedPayload,
    Task,
    Worker,
    check_positive,
    describe,
    fail,
    kill_group,
    run_chunk,
    settle,
)
from forklift.pool._requests import Outcome, Requests, resolve
from forklift.pool._worker import THREAD_LIMIT_VARIABLES, WorkerConfig
from forklift.pool.sharing import SharingScope, dumps_scoped

__all__ = ["ProcessPool"]

logger = logging.getLogger("forklift.pool")

# How long to wait for the fork server's report of a dead worker's exit status.
_STATUS_WAIT_SECONDS = 1.0
# How long shutdown waits for workers to exit after being asked before killing them.
_EXIT_GRACE_SECONDS = 5.0
# Workers that die before saying hello this many times in a row mean starting is broken.
_MAX_FAILED_STARTS = 3
# A task queued in a worker behind a running one saves only the hand-off (~0.1 ms); that
# pays for tiny tasks. One running longer than this is no tiny task and may be a slow one:
# nothing is queued behind it (a fast task would wait for it); the manager hands the next
# task to whichever worker frees first.
_PREFETCH_HORIZON_SECONDS = 0.02

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
            (numpy is added when the caller has imported it).
        prefetch: tasks handed to a worker ahead of time (1 = only when idle); never
            behind a task that has run over 20 ms (it may be a slow one).
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
        if max_tasks_per_child is not None:
            check_positive("max_tasks_per_child", max_tasks_per_child)
        if thread_limit is not None:
            check_positive("thread_limit", thread_limit)
        check_positive("prefetch", prefetch)
        if idle_worker_timeout is not None and not idle_worker_timeout > 0:
            raise ConfigurationError(
                f"idle_worker_timeout must be positive or None, got {idle_worker_timeout!r}"
            )
        self._max_workers = max_workers
        self.initializer = initializer
        self.initargs = tuple(initargs)
        self.env = dict(env or {})
        self.max_tasks_per_child = max_tasks_per_child
        self.idle_worker_timeout = idle_worker_timeout
        self._thread_limit = thread_limit
        self._memory_growth_limit = memory_growth_limit
        self._preload = list(preload)
        # Heavy optional modules the caller uses: imported by the server when it is idle.
        self._idle_preload = ["numpy"] if "numpy" in sys.modules else []
        self._prefetch = prefetch
        self._owner_pid = os.getpid()

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: collections.deque[Task] = collections.deque()
        self._tasks: dict[int, Task] = {}
        self._workers: dict[int, Worker] = {}
        self._spawning: dict[int, int | None] = {}  # worker id -> pid once forked
        self._dying: dict[int, Worker] = {}  # pid -> worker whose socket closed
        self._statuses: dict[int, int] = {}  # pid -> exit status reported early
        self._closing_scopes: list[SharingScope] = []
        # Requests from callers that must not wait for the lock (see _requests.py).
        self._requests = Requests(self._lock, self._wake)
        self._drains = Drains()
        self._busy_since: dict[int, float] = {}  # worker id -> when its current task began
        self._scope_counts: dict[int, int] = {}
        self._task_ids = itertools.count()
        self._worker_ids = itertools.count(1)
        self._failed_starts = 0
        self._warm_target = 0
        self._broken: BaseException | None = None
        self._shutdown = False
        self._exit_deadline: float | None = None
        self._thread: threading.Thread | None = None
        self._launcher: Launcher | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_read = self._wake_write = -1
        _live_pools.add(self)

    # -- public API ---------------------------------------------------------------------------
    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def broken(self) -> bool:
        return self._broken is not None

    @property
    def n_workers(self) -> int:
        """Workers alive and taking tasks now."""
        with self._lock:
            return sum(1 for worker in self._workers.values() if worker.accepts_tasks)

    def worker_pids(self) -> list[int]:
        """Process ids of the workers alive now (for tests and diagnostics)."""
        with self._lock:
            return [worker.pid for worker in self._workers.values()]

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
            task_tuple = (fn, tuple(args), dict(kwargs or {}))
            tokens: set[int] = set()
            if scope is None:
                payload = cloudpickle.dumps(task_tuple, protocol=5)
            else:
                payload, tokens = dumps_scoped(task_tuple, scope)
                for token in tokens:
                    scope.payload(token)  # pickle definitions now, so failures surface here
        except TempSpaceError as error:
            future.set_exception(error)  # already says what to do; not a pickling problem
            return future
        except Exception as error:
            problem = TaskPicklingError(
                f"the task {label} could not be pickled to send it to a worker: {error}"
            )
            problem.__cause__ = error
            future.set_exception(problem)
            return future
        with self._lock:
            self._check_usable()
            task = Task(next(self._task_ids), future, payload, tokens, scope, label)
            self._tasks[task.task_id] = task
            if scope is not None:
                self._scope_counts[id(scope)] = self._scope_counts.get(id(scope), 0) + 1
            self._pending.append(task)
            self._ensure_started()
            outcome = self._requests.apply()
            self._dispatch()
            self._spawn()
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

    def warm_up(self, n_workers: int | None = None, timeout: float | None = 30.0) -> int:
        """Start workers now (up to ``n_workers``, default ``max_workers``) and wait for them.

        Returns how many workers are ready. Pays start-up ahead of the first real call.
        """
        target = min(self._max_workers if n_workers is None else n_workers, self._max_workers)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._check_usable()
            self._ensure_started()
            self._warm_target = target
            self._spawn()
            while self._count_ready() < target and self._broken is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._changed.wait(remaining)
            self._warm_target = 0
            if self._broken is not None:
                raise self._broken
            return self._count_ready()

    def resize(self, max_workers: int) -> None:
        """Change the number of workers; busy workers beyond it leave once their work is done."""
        check_positive("max_workers", max_workers)
        with self._lock:
            self._max_workers = max_workers
            accepting = [worker for worker in self._workers.values() if worker.accepts_tasks]
            excess = len(accepting) - max_workers
            if excess > 0:
                # Idle workers leave first, so that nobody's running task is in the way.
                accepting.sort(key=lambda worker: len(worker.in_flight))
                for worker in accepting[:excess]:
                    worker.retiring = True
                self._retire_idle()
            self._spawn()

    def add_preload(self, modules: Sequence[str]) -> None:
        """Modules for the fork server to preload (effective when it next starts)."""
        for name in modules:
            if name not in self._preload:
                self._preload.append(name)

    def set_thread_limit(self, thread_limit: int | None) -> None:
        """Cap BLAS/OpenMP threads in workers; workers started under another cap are replaced
        (idle ones now, busy ones once their tasks are done)."""
        if thread_limit is not None:
            check_positive("thread_limit", thread_limit)
        with self._lock:
            if thread_limit == self._thread_limit:
                return
            self._thread_limit = thread_limit
            for worker in self._workers.values():
                worker.retiring = True
            self._retire_idle()
            self._spawn()

    def cancel_future(self, future: Future[Any]) -> None:
        """Give up on one task: cancel it if queued; if its worker is running it, kill that
        worker (a replacement starts; tasks queued behind it run elsewhere). A task handed to
        a worker but not started yet is dropped from our books; its result will be ignored."""
        with self._lock:
            for task in self._pending:
                if task.future is future:
                    self._pending.remove(task)
                    self._forget_task(task)
                    break
            else:
                for worker in self._workers.values():
                    for position, task in enumerate(worker.in_flight):
                        if task.future is not future:
                            continue
                        del worker.in_flight[position]
                        self._forget_task(task)
                        if position == 0:
                            self._kill(worker)
                        break
                    else:
                        continue
                    break
            self._spawn()
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
        request = functools.partial(self._cancel_scope_locked, scope, kill_running, grace)
        self._requests.ask(request, then=self._dispatch_and_spawn)

    def release_scope(self, scope: SharingScope) -> None:
        """``scope`` is done: workers drop its definitions once its tasks are finished.
        Never waits for the pool's lock (as :meth:`cancel_scope`)."""
        request = functools.partial(self._release_scope_locked, scope)
        self._requests.ask(request, then=self._dispatch_and_spawn)

    def shutdown(
        self, wait: bool = True, *, cancel_futures: bool = False, kill_workers: bool = False
    ) -> None:
        """Stop the pool: queued tasks still run unless ``cancel_futures``; ``kill_workers``
        kills the workers (and everything they started) at once instead of letting them
        finish. With ``wait=False`` it never waits for the pool's lock (as
        :meth:`cancel_scope`)."""
        self._shutdown = True
        request = functools.partial(self._shutdown_locked, cancel_futures, kill_workers)
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
            self._dispatch()
            self._spawn()

    def _cancel_scope_locked(
        self, scope: SharingScope, kill_running: bool, grace: float
    ) -> Outcome:
        outcome: Outcome = []
        for task in [task for task in self._pending if task.scope is scope]:
            self._pending.remove(task)
            self._forget_task(task)
            outcome.append((task, None))
        if not kill_running:
            return outcome
        deadline = time.monotonic() + grace
        for worker in list(self._workers.values()):
            mine = [
                task
                for task in worker.in_flight
                if task.scope is scope and not self._drains.is_abandoned(task)
            ]
            if not mine:
                continue
            for task in mine:
                self._forget_task(task)
                outcome.append((task, None))
            if grace > 0 and not worker.killed and worker.dead_since is None:
                # Kept in its books, in order, until they end or the worker is killed.
                self._drains.begin(worker, mine, deadline)
                continue
            for task in mine:
                worker.in_flight.remove(task)
            self._kill(worker)
        return outcome

    def _release_scope_locked(self, scope: SharingScope) -> Outcome:
        self._closing_scopes.append(scope)
        self._release_finished_scopes()
        return []

    def _shutdown_locked(self, cancel_futures: bool, kill_workers: bool) -> Outcome:
        outcome: Outcome = []
        if cancel_futures or kill_workers:
            for task in self._pending:
                self._forget_task(task)
                outcome.append((task, None))
            self._pending.clear()
        if kill_workers:
            for worker in self._workers.values():
                worker.killed = True
                kill_group(worker.pid)
                for task in worker.in_flight:
                    outcome.append(
                        (
                            task,
                            TerminatedWorkerError(
                                f"the pool was shut down with kill_workers=True while "
                                f"{task.label} ran"
                            ),
                        )
                    )
        return outcome

    # -- internals: called with self._lock held ---------------------------------------------
    def _check_usable(self) -> None:
        if os.getpid() != self._owner_pid:
            raise RuntimeError("a forklift ProcessPool cannot be used in a forked child process")
        if self._broken is not None:
            raise self._broken
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _count_ready(self) -> int:
        return sum(1 for worker in self._workers.values() if worker.accepts_tasks)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        env = dict(os.environ)
        if self._thread_limit is not None:
            for name in THREAD_LIMIT_VARIABLES:
                env.setdefault(name, str(self._thread_limit))
        env.update(self.env)
        self._launcher = Launcher(env, self._preload, self._idle_preload)
        self._launcher.start_server()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        self._selector.register(self._launcher.listener, selectors.EVENT_READ, "listener")
        self._selector.register(self._launcher.report_fd, selectors.EVENT_READ, "reports")
        self._thread = threading.Thread(
            target=self._manage, name="forklift-pool-manager", daemon=True
        )
        self._thread.start()

    def _dispatch(self) -> None:
        while self._pending:
            worker = self._least_busy_worker()
            if worker is None:
                return
            task = self._pending.popleft()
            if not task.started:
                if not task.future.set_running_or_notify_cancel():
                    self._forget_task(task)
                    continue
                task.started = True
            try:
                for token in task.tokens - worker.known_tokens:
                    assert task.scope is not None
                    definition = task.scope.payload(token)
                    if definition.shared:
                        protocol.send(
                            worker.connection, protocol.DEFINE_SHARED, token, definition.layout
                        )
                        protocol.send_fd(worker.connection, definition.fd)
                    else:
                        protocol.send(worker.connection, protocol.DEFINE, token, definition.inline)
                    worker.known_tokens.add(token)
                protocol.send(worker.connection, protocol.TASK, task.task_id, task.payload)
            except OSError:
                # It just died; the manager will see its socket close. Keep the task.
                self._pending.appendleft(task)
                worker.dead_since = time.monotonic()
                continue
            worker.in_flight.append(task)
            if len(worker.in_flight) == 1:
                self._busy_since[worker.worker_id] = time.monotonic()
            worker.n_sent += 1
            if self.max_tasks_per_child is not None and worker.n_sent >= self.max_tasks_per_child:
                worker.retiring = True

    def _least_busy_worker(self) -> Worker | None:
        best: Worker | None = None
        # While workers are starting, queue nothing behind a busy worker: a new one takes it.
        limit = 1 if self._spawning else self._prefetch
        now = time.monotonic()
        for worker in self._workers.values():
            load = len(worker.in_flight)
            if load >= limit or not worker.accepts_tasks:
                continue
            if load == 0:
                return worker
            if now - self._busy_since.get(worker.worker_id, now) > _PREFETCH_HORIZON_SECONDS:
                continue
            if best is None or load < len(best.in_flight):
                best = worker
            elif load == len(best.in_flight) and _newest(worker) > _newest(best):
                # Equally busy: queue behind the one that got its work last. The one busy
                # longest is the likelier to be stuck on a slow task.
                best = worker
        return best

    def _spawn(self) -> None:
        if self._broken is not None or self._launcher is None:
            return
        if self._shutdown and not self._pending:
            return
        accepting = [worker for worker in self._workers.values() if worker.accepts_tasks]
        n_live = len(accepting) + len(self._spawning)
        n_idle = sum(1 for worker in accepting if not worker.in_flight)
        wanted = max(len(self._pending) - n_idle - len(self._spawning), self._warm_target - n_live)
        for _ in range(min(wanted, self._max_workers - n_live)):
            if not self._launcher.server_running:
                # The fork server went away (its reports ended): start a new one.
                self._launcher.start_server()
                self._replace_report_channel()
            worker_id = next(self._worker_ids)
            self._spawning[worker_id] = None
            try:
                self._launcher.request_worker(worker_id)
            except OSError:
                # It died just now: start a new one for the next request.
                del self._spawning[worker_id]
                selector = self._selector
                if selector is not None:
                    with contextlib.suppress(KeyError, ValueError):
                        selector.unregister(self._launcher.report_fd)
                self._launcher.forget_server()
                return

    def _replace_report_channel(self) -> None:
        assert self._selector is not None
        assert self._launcher is not None
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._launcher.report_fd)
        self._selector.register(self._launcher.report_fd, selectors.EVENT_READ, "reports")

    def _retire_idle(self) -> None:
        now = time.monotonic()
        timeout = self.idle_worker_timeout
        for worker in self._workers.values():
            if worker.exit_sent or worker.dead_since is not None or worker.in_flight:
                continue
            idle_too_long = timeout is not None and now - worker.idle_since > timeout
            if worker.retiring or idle_too_long or (self._shutdown and not self._pending):
                worker.retiring = True
                worker.exit_sent = True
                with contextlib.suppress(OSError):
                    protocol.send(worker.connection, protocol.EXIT)

    def _kill(self, worker: Worker) -> None:
        """Kill a worker on purpose: its death is no crash; a replacement starts for the
        work waiting, and tasks of others that it held go back to the queue."""
        if not worker.killed:
            worker.killed = True
            worker.retiring = True
            kill_group(worker.pid)

    def _forget_task(self, task: Task) -> None:
        if self._tasks.pop(task.task_id, None) is None:
            return  # forgotten already (given up on, then its worker died or answered)
        if task.scope is not None:
            key = id(task.scope)
            left = self._scope_counts.get(key, 1) - 1
            if left > 0:
                self._scope_counts[key] = left
            else:
                self._scope_counts.pop(key, None)
                if self._closing_scopes:
                    self._release_finished_scopes()

    def _release_finished_scopes(self) -> None:
        still_closing = []
        for scope in self._closing_scopes:
            if self._scope_counts.get(id(scope)):
                still_closing.append(scope)
                continue
            tokens = set(scope.tokens())
            for worker in self._workers.values():
                known = worker.known_tokens & tokens
                if known and worker.dead_since is None:
                    worker.known_tokens -= known
                    with contextlib.suppress(OSError):
                        protocol.send(worker.connection, protocol.FORGET, 0, pickle.dumps(known))
            scope.close()
        self._closing_scopes = still_closing

    # -- the manager thread ---------------------------------------------------------------------
    def _wake(self) -> None:
        if self._wake_write >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_write, b"\0")

    def _manage(self) -> None:
        selector = self._selector
        launcher = self._launcher
        assert selector is not None
        assert launcher is not None
        try:
            while True:
                settled: list[tuple[Task, bool, Any]] = []
                for key, _ in selector.select(self._next_timeout()):
                    if key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_read, 4096)
                    elif key.data == "listener":
                        self._accept(selector, launcher)
                    elif key.data == "reports":
                        self._read_reports(selector, launcher, settled)
                    else:
                        self._read_worker(key.data, selector, settled)
                with self._lock:
                    requested = self._requests.apply()
                    self._check_timers(selector, settled)
                    self._dispatch()
                    self._spawn()
                    finished = self._wind_down(launcher)
                resolve(requested)
                settle(settled)
                if finished:
                    break
        except BaseException:  # pragma: no cover - a bug here must not hang every caller
            logger.exception("forklift pool manager crashed; failing pending tasks")
            with self._lock:
                self._broken = WorkerStartError("the forklift pool's manager thread crashed")
                tasks = list(self._tasks.values())
                self._tasks.clear()
                self._pending.clear()
            for task in tasks:
                fail(task.future, self._broken)
            for worker in list(self._workers.values()):
                kill_group(worker.pid)
        finally:
            self._close_everything(selector, launcher)

    def _next_timeout(self) -> float | None:
        deadlines: list[float] = []
        if self._dying or self._shutdown:
            deadlines.append(0.05)
        drained_by = self._drains.next_deadline()
        if drained_by is not None:
            deadlines.append(max(0.0, drained_by - time.monotonic()))
        if self.idle_worker_timeout is not None and self._workers:
            deadlines.append(min(self.idle_worker_timeout, 1.0))
        return min(deadlines) if deadlines else None

    def _accept(self, selector: selectors.BaseSelector, launcher: Launcher) -> None:
        accepted = launcher.accept()
        if accepted is None:
            return
        connection, worker_id, pid = accepted
        with self._lock:
            expected = worker_id in self._spawning
            self._spawning.pop(worker_id, None)
            worker = Worker(worker_id, pid, connection)
            config = WorkerConfig(
                initializer=self.initializer,
                initargs=self.initargs,
                env=self.env,
                thread_limit=self._thread_limit,
                memory_growth_limit=self._memory_growth_limit,
            )
            try:
                protocol.send(connection, protocol.INIT, 0, cloudpickle.dumps(config, protocol=5))
                unwanted = self._shutdown and not self._pending
                if not expected or unwanted or self._count_ready() >= self._max_workers:
                    worker.retiring = worker.exit_sent = True
                    protocol.send(connection, protocol.EXIT)
            except OSError:
                worker.dead_since = time.monotonic()
            self._workers[worker_id] = worker
            self._failed_starts = 0
            selector.register(connection, selectors.EVENT_READ, worker)
            self._changed.notify_all()

    def _read_reports(
        self,
        selector: selectors.BaseSelector,
        launcher: Launcher,
        settled: list[tuple[Task, bool, Any]],
    ) -> None:
        reports = launcher.read_reports()
        with self._lock:
            if reports is None:
                selector.unregister(launcher.report_fd)
                launcher.forget_server()
                if self._spawning:  # it died before the workers it was starting said hello
                    self._failed_starts += 1
                    if self._failed_starts >= _MAX_FAILED_STARTS:
                        error = WorkerStartError(
                            "forklift's fork server keeps exiting before its workers start "
                            "(its own error, if it printed one, is on stderr)"
                        )
                        self._break(error, settled)
                self._spawning.clear()
                # Workers whose exit we were waiting to hear about: we never will.
                for worker in list(self._dying.values()):
                    self._bury(worker, None, selector, settled)
                return
            for kind, first, second in reports:
                if kind == "F":
                    if first in self._spawning:
                        self._spawning[first] = second
                    continue
                pid, status = first, second
                dying = self._dying.get(pid)
                if dying is not None:
                    self._bury(dying, status, selector, settled)
                    continue
                for worker_id, spawned_pid in list(self._spawning.items()):
                    if spawned_pid == pid:  # died before it could say hello
                        del self._spawning[worker_id]
                        self._failed_starts += 1
                        logger.warning(
                            "a forklift worker (pid %d) died while starting: %s",
                            pid,
                            describe_exit_status(status),
                        )
                        if self._failed_starts >= _MAX_FAILED_STARTS:
                            self._break(
                                WorkerStartError(
                                    "forklift workers die while starting: "
                                    + describe_exit_status(status)
                                ),
                                settled,
                            )
                        break
                else:
                    if any(worker.pid == pid for worker in self._workers.values()):
                        self._statuses[pid] = status

    def _read_worker(
        self,
        worker: Worker,
        selector: selectors.BaseSelector,
        settled: list[tuple[Task, bool, Any]],
    ) -> None:
        connection = worker.connection
        while True:
            try:
                kind, number, payload = protocol.receive(connection)
            except (EOFError, OSError):
                with self._lock:
                    self._socket_closed(worker, selector, settled)
                return
            received: bytes | memoryview | SharedPayload = payload
            if kind == protocol.RESULT_SHARED:
                try:
                    received = SharedPayload(bytes(payload), protocol.receive_fd(connection))
                except (EOFError, OSError):
                    with self._lock:
                        self._socket_closed(worker, selector, settled)
                    return
                kind = protocol.RESULT_OK
            if kind in (protocol.RESULT_OK, protocol.RESULT_ERROR):
                with self._lock:
                    task = self._finish(worker, number)
                    self._dispatch()  # keep this worker busy before unpickling the result
                if task is not None:
                    settled.append((task, kind == protocol.RESULT_OK, received))
            elif kind == protocol.RETIRE:
                with self._lock:
                    worker.retiring = True
            elif kind == protocol.INIT_FAILED:
                text = bytes(payload).decode(errors="replace")
                error = WorkerStartError(
                    "the pool's initializer raised in a worker, so the pool cannot run tasks"
                )
                error.__cause__ = RemoteTraceback(text)
                with self._lock:
                    self._break(error, settled)
            try:
                more = connection.poll(0)
            except (EOFError, OSError):
                more = True  # receive() will see the EOF
            if not more:
                return

    def _finish(self, worker: Worker, task_id: int) -> Task | None:
        task = None
        for position, candidate in enumerate(worker.in_flight):
            if candidate.task_id == task_id:
                task = candidate
                del worker.in_flight[position]
                break
        if worker.in_flight:
            self._busy_since[worker.worker_id] = time.monotonic()  # the next one begins
        else:
            worker.idle_since = time.monotonic()
        if task is None:
            return None
        abandoned = self._drains.is_abandoned(task)
        if self._drains.task_ended(worker, task) and self._count_ready() > self._max_workers:
            worker.retiring = True  # done in time, but its replacement took its place
        self._forget_task(task)
        if worker.retiring and not worker.in_flight:
            self._retire_idle()
        return None if abandoned else task  # nobody wants an abandoned task's result

    def _socket_closed(
        self,
        worker: Worker,
        selector: selectors.BaseSelector,
        settled: list[tuple[Task, bool, Any]],
    ) -> None:
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(worker.connection)
        worker.connection.close()
        if worker.dead_since is None:
            worker.dead_since = time.monotonic()
        if worker.exit_sent and not worker.in_flight:
            self._workers.pop(worker.worker_id, None)
            self._busy_since.pop(worker.worker_id, None)
            self._statuses.pop(worker.pid, None)
            self._changed.notify_all()
            return
        status = self._statuses.pop(worker.pid, None)
        if status is not None:
            self._bury(worker, status, selector, settled)
        else:
            self._dying[worker.pid] = worker  # wait a moment for the server's exit report

    def _bury(
        self,
        worker: Worker,
        status: int | None,
        selector: selectors.BaseSelector,
        settled: list[tuple[Task, bool, Any]],
    ) -> None:
        """A worker died with tasks: fail the one it was running, requeue the others."""
        self._dying.pop(worker.pid, None)
        self._workers.pop(worker.worker_id, None)
        self._busy_since.pop(worker.worker_id, None)
        self._drains.forget(worker)
        tasks = list(worker.in_flight)
        worker.in_flight.clear()
        if tasks and not worker.killed:
            culprit = tasks.pop(0)
            self._forget_task(culprit)
            error = TerminatedWorkerError(
                f"a forklift worker process (pid {worker.pid}) died while running "
                f"{culprit.label}: {describe_exit_status(status)}",
                pid=worker.pid,
                exit_status=status,
                task_label=culprit.label,
            )
            settled.append((culprit, False, error))
        # Tasks that never started (or all, for a worker killed on purpose): run elsewhere.
        for task in reversed(tasks):
            if task.future.done():
                self._forget_task(task)
            else:
                self._pending.appendleft(task)
        self._changed.notify_all()

    def _break(self, error: BaseException, settled: list[tuple[Task, bool, Any]]) -> None:
        self._broken = error
        for task in list(self._tasks.values()):
            settled.append((task, False, error))
        self._tasks.clear()
        self._pending.clear()
        for worker in self._workers.values():
            worker.in_flight.clear()
            worker.killed = True
            kill_group(worker.pid)
        self._changed.notify_all()

    def _check_timers(
        self, selector: selectors.BaseSelector, settled: list[tuple[Task, bool, Any]]
    ) -> None:
        now = time.monotonic()
        for worker in list(self._dying.values()):
            if worker.dead_since is not None and now - worker.dead_since > _STATUS_WAIT_SECONDS:
                self._bury(worker, None, selector, settled)
        for worker_id in self._drains.expired(now):
            late = self._workers.get(worker_id)
            if late is not None:
                self._kill(late)  # still busy with abandoned work past its grace
        self._retire_idle()

    def _wind_down(self, launcher: Launcher) -> bool:
        """At shutdown, once no task is left: ask workers to exit, then the server."""
        if not self._shutdown or self._tasks:
            return False
        self._retire_idle()
        if self._workers or self._dying or self._spawning:
            if self._exit_deadline is None:
                self._exit_deadline = time.monotonic() + _EXIT_GRACE_SECONDS
            elif time.monotonic() > self._exit_deadline:
                for worker in self._workers.values():
                    kill_group(worker.pid)
                self._workers.clear()
                self._dying.clear()
                return True
            return False
        return True

    def _close_everything(self, selector: selectors.BaseSelector, launcher: Launcher) -> None:
        with self._lock:
            requested = self._requests.apply()
            workers = list(self._workers.values())
            self._workers.clear()
        resolve(requested)
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.connection.close()
        launcher.close()
        selector.close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_read = self._wake_write = -1
        _live_pools.discard(self)
        with self._lock:
            self._changed.notify_all()

    def _kill_at_exit(self) -> None:
        """Last resort at interpreter exit: kill the workers, even if the lock is stuck (a
        bug elsewhere must not turn into a process that never exits)."""
        if self._lock.acquire(timeout=_STATUS_WAIT_SECONDS):
            try:
                self._shutdown_locked(cancel_futures=True, kill_workers=True)
            finally:
                self._lock.release()
        else:
            logger.warning("the forklift pool's lock is stuck at exit; killing its workers")
            for worker in list(self._workers.values()):
                kill_group(worker.pid)
        self._wake()
        thread = self._thread
        if thread is not None:
            thread.join(_STATUS_WAIT_SECONDS)

    def __repr__(self) -> str:
        state = "broken" if self._broken else "shut down" if self._shutdown else "running"
        return f"ProcessPool(max_workers={self._max_workers}, {state})"


def _newest(worker: Worker) -> int:
    return worker.in_flight[-1].task_id


@atexit.register
def _shutdown_all_pools() -> None:
    """At interpreter exit: no worker, fork server or socket is left behind."""
    pools = list(_live_pools)
    for pool in pools:
        with contextlib.suppress(Exception):
            pool.shutdown(wait=False, cancel_futures=True)
    # Running tasks get a few seconds to finish; then their workers are killed, so that an
    # abandoned long task cannot hold the interpreter's exit hostage.
    deadline = time.monotonic() + _EXIT_GRACE_SECONDS
    for pool in pools:
        thread = pool._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                with contextlib.suppress(Exception):
                    pool._kill_at_exit()
