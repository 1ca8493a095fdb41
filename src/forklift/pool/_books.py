"""The pool's books: where every task and worker is, and the rules that move them.

Everything here is read and changed with the pool's lock held (:attr:`Books.lock`), by
whichever thread holds it: a caller in ``submit`` (so a task reaches an idle worker without
waiting for the manager to wake up) or the manager thread (:mod:`._manager`) after reading
the sockets. Nothing here blocks on a socket but short sends; futures are never resolved
here: what is done goes into a ``settled`` list that the manager resolves outside the lock
(a future's callbacks may submit more work).

Where a task is::

    pending (FIFO) --dispatch--> worker.in_flight (in the order sent) --finish--> settled
                                      |
                    the worker died: the first of them (the one running) fails,
                    the others go back to the head of pending

Where a worker is::

    spawning (asked of the fork server) --admit--> workers --socket closed--> dying
        (its state: ACTIVE, DRAINING, RETIRING, EXIT_SENT, KILLED)     --exit status--> gone

A worker is killed in one place (:meth:`Books.kill`): its state says it was on purpose, so
its death is not reported as a crash, and the tasks of others that it held run elsewhere.

Imports only the standard library, cloudpickle and the pool's own modules.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import pickle
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import cloudpickle

from forklift.errors import TerminatedWorkerError, WorkerStartError
from forklift.pool import _protocol as protocol
from forklift.pool._abandon import Drains
from forklift.pool._launcher import Exited, Forked, Report, describe_exit_status
from forklift.pool._records import Settled, Task, Worker, WorkerState, kill_group
from forklift.pool.options import WorkerOptions
from forklift.pool.sharing import ScopeCounts

__all__ = ["EXIT_GRACE_SECONDS", "STATUS_WAIT_SECONDS", "Books"]

logger = logging.getLogger("forklift.pool")

# How long to wait for the fork server's report of a dead worker's exit status.
STATUS_WAIT_SECONDS = 1.0
# How long shutdown waits for workers to exit after being asked before killing them.
EXIT_GRACE_SECONDS = 5.0
# Workers that die before saying hello this many times in a row mean starting is broken.
_MAX_FAILED_STARTS = 3
# A task queued in a worker behind a running one saves only the hand-off (~0.1 ms); that
# pays for tiny tasks. One running longer than this is no tiny task and may be a slow one:
# nothing is queued behind it (a fast task would wait for it); the manager hands the next
# task to whichever worker frees first.
_PREFETCH_HORIZON_SECONDS = 0.02


class Books:
    """The tasks and workers of one pool (see the module docstring); lock held throughout."""

    def __init__(
        self,
        max_workers: int,
        options: WorkerOptions,
        idle_worker_timeout: float | None,
        prefetch: int,
    ) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.max_workers = max_workers
        self.options = options
        self.idle_worker_timeout = idle_worker_timeout
        self.prefetch = prefetch
        self.pending: collections.deque[Task] = collections.deque()
        self.tasks: dict[int, Task] = {}
        self.task_ids = itertools.count()
        self.scopes = ScopeCounts()
        self.drains = Drains()
        self.workers: dict[int, Worker] = {}
        self.spawning: dict[int, int | None] = {}  # worker id -> pid once forked
        self.dying: dict[int, Worker] = {}  # pid -> worker whose socket closed
        self.statuses: dict[int, int] = {}  # pid -> exit status reported early
        self.busy_since: dict[int, float] = {}  # worker id -> when its current task began
        self._worker_ids = itertools.count(1)
        self.failed_starts = 0
        self.warm_target = 0
        self.broken: BaseException | None = None
        self.shutdown = False
        self._exit_deadline: float | None = None
        # Asks the fork server for a worker; False if it could not. Set once the pool starts.
        self.start_worker: Callable[[int], bool] | None = None

    # -- tasks --------------------------------------------------------------------------------
    def add(self, task: Task) -> None:
        self.tasks[task.task_id] = task
        if task.scope is not None:
            self.scopes.opened(task.scope)
        self.pending.append(task)

    def forget(self, task: Task) -> None:
        if self.tasks.pop(task.task_id, None) is None:
            return  # forgotten already (given up on, then its worker died or answered)
        if task.scope is not None and self.scopes.ended(task.scope):
            self.close_finished_scopes()

    def close_finished_scopes(self) -> None:
        """Released scopes with no task left: workers drop their definitions."""
        for scope in self.scopes.finished():
            tokens = set(scope.tokens())
            for worker in self.workers.values():
                known = worker.known_tokens & tokens
                if known and worker.dead_since is None:
                    worker.known_tokens -= known
                    with contextlib.suppress(OSError):
                        protocol.send(worker.connection, protocol.FORGET, 0, pickle.dumps(known))
            scope.close()

    def dispatch(self) -> None:
        """Hand pending tasks to workers (see :meth:`_least_busy`), definitions first."""
        while self.pending:
            worker = self._least_busy()
            if worker is None:
                return
            task = self.pending.popleft()
            if not task.started:
                if not task.future.set_running_or_notify_cancel():
                    self.forget(task)
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
                self.pending.appendleft(task)
                worker.dead_since = time.monotonic()
                continue
            worker.in_flight.append(task)
            if len(worker.in_flight) == 1:
                self.busy_since[worker.worker_id] = time.monotonic()
            worker.n_sent += 1
            limit = self.options.max_tasks_per_child
            if limit is not None and worker.n_sent >= limit:
                worker.advance(WorkerState.RETIRING)

    def _least_busy(self) -> Worker | None:
        best: Worker | None = None
        # While workers are starting, queue nothing behind a busy worker: a new one takes it.
        limit = 1 if self.spawning else self.prefetch
        now = time.monotonic()
        for worker in self.workers.values():
            load = len(worker.in_flight)
            if load >= limit or not worker.accepts_tasks:
                continue
            if load == 0:
                return worker
            if now - self.busy_since.get(worker.worker_id, now) > _PREFETCH_HORIZON_SECONDS:
                continue
            if best is None or load < len(best.in_flight):
                best = worker
            elif load == len(best.in_flight) and _newest(worker) > _newest(best):
                # Equally busy: queue behind the one that got its work last. The one busy
                # longest is the likelier to be stuck on a slow task.
                best = worker
        return best

    def finish(self, worker: Worker, task_id: int) -> Task | None:
        """``worker`` answered ``task_id``: the task whose result is wanted, if any."""
        task = None
        for position, candidate in enumerate(worker.in_flight):
            if candidate.task_id == task_id:
                task = candidate
                del worker.in_flight[position]
                break
        if worker.in_flight:
            self.busy_since[worker.worker_id] = time.monotonic()  # the next one begins
        else:
            worker.idle_since = time.monotonic()
        if task is None:
            return None
        abandoned = self.drains.is_abandoned(task)
        if self.drains.task_ended(worker, task) and self.count_ready() > self.max_workers:
            worker.advance(WorkerState.RETIRING)  # done in time, but replaced meanwhile
        self.forget(task)
        if worker.state >= WorkerState.RETIRING and not worker.in_flight:
            self.retire_idle()
        return None if abandoned else task  # nobody wants an abandoned task's result

    # -- workers ------------------------------------------------------------------------------
    def count_ready(self) -> int:
        return sum(1 for worker in self.workers.values() if worker.accepts_tasks)

    def spawn(self) -> None:
        """Ask for the workers that the pending tasks (or :attr:`warm_target`) want."""
        if self.broken is not None or self.start_worker is None:
            return
        if self.shutdown and not self.pending:
            return
        accepting = [worker for worker in self.workers.values() if worker.accepts_tasks]
        n_live = len(accepting) + len(self.spawning)
        n_idle = sum(1 for worker in accepting if not worker.in_flight)
        wanted = max(len(self.pending) - n_idle - len(self.spawning), self.warm_target - n_live)
        for _ in range(min(wanted, self.max_workers - n_live)):
            worker_id = next(self._worker_ids)
            self.spawning[worker_id] = None
            if not self.start_worker(worker_id):
                del self.spawning[worker_id]
                return

    def admit(self, worker_id: int, pid: int, connection: Connection) -> Worker:
        """A worker said hello: send it the options; ask it to exit at once if unwanted."""
        expected = worker_id in self.spawning
        self.spawning.pop(worker_id, None)
        worker = Worker(worker_id, pid, connection)
        try:
            protocol.send(connection, protocol.INIT, 0, cloudpickle.dumps(self.options, protocol=5))
            unwanted = self.shutdown and not self.pending
            if not expected or unwanted or self.count_ready() >= self.max_workers:
                worker.advance(WorkerState.EXIT_SENT)
                protocol.send(connection, protocol.EXIT)
        except OSError:
            worker.dead_since = time.monotonic()
        self.workers[worker_id] = worker
        self.failed_starts = 0
        self.changed.notify_all()
        return worker

    def retire_idle(self) -> None:
        """Ask idle workers to exit: retiring ones, those idle too long, all at shutdown."""
        now = time.monotonic()
        timeout = self.idle_worker_timeout
        for worker in self.workers.values():
            if worker.state >= WorkerState.EXIT_SENT:
                continue
            if worker.dead_since is not None or worker.in_flight:
                continue
            idle_too_long = timeout is not None and now - worker.idle_since > timeout
            retiring = worker.state is WorkerState.RETIRING
            if retiring or idle_too_long or (self.shutdown and not self.pending):
                worker.advance(WorkerState.EXIT_SENT)
                with contextlib.suppress(OSError):
                    protocol.send(worker.connection, protocol.EXIT)

    def kill(self, worker: Worker) -> None:
        """Kill a worker on purpose: its death is no crash; a replacement starts for the
        work waiting, and tasks of others that it held go back to the queue."""
        if worker.state is not WorkerState.KILLED:
            worker.state = WorkerState.KILLED
            kill_group(worker.pid)

    def kill_all(self) -> None:
        for worker in list(self.workers.values()):
            self.kill(worker)

    def socket_closed(self, worker: Worker, settled: Settled) -> None:
        """``worker``'s socket closed: gone quietly if it was asked to exit, else buried
        once the fork server reports how it died (or after a moment without a report)."""
        worker.connection.close()
        if worker.dead_since is None:
            worker.dead_since = time.monotonic()
        if worker.state >= WorkerState.EXIT_SENT and not worker.in_flight:
            self.drains.forget(worker)
            self.workers.pop(worker.worker_id, None)
            self.busy_since.pop(worker.worker_id, None)
            self.statuses.pop(worker.pid, None)
            self.changed.notify_all()
            return
        status = self.statuses.pop(worker.pid, None)
        if status is not None:
            self.bury(worker, status, settled)
        else:
            self.dying[worker.pid] = worker  # wait a moment for the server's exit report

    def bury(self, worker: Worker, status: int | None, settled: Settled) -> None:
        """A worker died with tasks: fail the one it was running, requeue the others."""
        self.dying.pop(worker.pid, None)
        self.workers.pop(worker.worker_id, None)
        self.busy_since.pop(worker.worker_id, None)
        self.drains.forget(worker)
        tasks = list(worker.in_flight)
        worker.in_flight.clear()
        if tasks and worker.state is not WorkerState.KILLED:
            culprit = tasks.pop(0)
            self.forget(culprit)
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
                self.forget(task)
            else:
                self.pending.appendleft(task)
        self.changed.notify_all()

    def break_pool(self, error: BaseException, settled: Settled) -> None:
        """The pool cannot run tasks: every task fails with ``error``, every worker dies."""
        self.broken = error
        for task in list(self.tasks.values()):
            settled.append((task, False, error))
        self.tasks.clear()
        self.pending.clear()
        for worker in self.workers.values():
            worker.in_flight.clear()
        self.kill_all()
        self.changed.notify_all()

    # -- the fork server's reports ------------------------------------------------------------
    def server_gone(self, settled: Settled) -> None:
        """The fork server's reports ended: it is gone, with the workers it was starting."""
        if self.spawning:  # it died before the workers it was starting said hello
            self.failed_starts += 1
            if self.failed_starts >= _MAX_FAILED_STARTS:
                error = WorkerStartError(
                    "forklift's fork server keeps exiting before its workers start "
                    "(its own error, if it printed one, is on stderr)"
                )
                self.break_pool(error, settled)
        self.spawning.clear()
        # Workers whose exit we were waiting to hear about: we never will.
        for worker in list(self.dying.values()):
            self.bury(worker, None, settled)

    def heard(self, reports: list[Report], settled: Settled) -> None:
        for report in reports:
            if isinstance(report, Forked):
                if report.worker_id in self.spawning:
                    self.spawning[report.worker_id] = report.pid
            else:
                self._exited(report, settled)

    def _exited(self, report: Exited, settled: Settled) -> None:
        pid, status = report
        dying = self.dying.get(pid)
        if dying is not None:
            self.bury(dying, status, settled)
            return
        for worker_id, spawned_pid in list(self.spawning.items()):
            if spawned_pid == pid:  # died before it could say hello
                del self.spawning[worker_id]
                self.failed_starts += 1
                described = describe_exit_status(status)
                logger.warning("a forklift worker (pid %d) died while starting: %s", pid, described)
                if self.failed_starts >= _MAX_FAILED_STARTS:
                    error = WorkerStartError(f"forklift workers die while starting: {described}")
                    self.break_pool(error, settled)
                return
        if any(worker.pid == pid for worker in self.workers.values()):
            self.statuses[pid] = status

    # -- time ---------------------------------------------------------------------------------
    def next_timeout(self) -> float | None:
        deadlines: list[float] = []
        if self.dying or self.shutdown:
            deadlines.append(0.05)
        drained_by = self.drains.next_deadline()
        if drained_by is not None:
            deadlines.append(max(0.0, drained_by - time.monotonic()))
        if self.idle_worker_timeout is not None and self.workers:
            deadlines.append(min(self.idle_worker_timeout, 1.0))
        return min(deadlines) if deadlines else None

    def check_timers(self, settled: Settled) -> None:
        now = time.monotonic()
        for worker in list(self.dying.values()):
            if worker.dead_since is not None and now - worker.dead_since > STATUS_WAIT_SECONDS:
                self.bury(worker, None, settled)
        for worker_id in self.drains.expired(now):
            late = self.workers.get(worker_id)
            if late is not None:
                self.kill(late)  # still busy with abandoned work past its grace
        self.retire_idle()

    def wind_down(self) -> bool:
        """At shutdown, once no task is left: ask workers to exit; True once all are gone
        (killed if they take longer than :data:`EXIT_GRACE_SECONDS`)."""
        if not self.shutdown or self.tasks:
            return False
        self.retire_idle()
        if self.workers or self.dying or self.spawning:
            if self._exit_deadline is None:
                self._exit_deadline = time.monotonic() + EXIT_GRACE_SECONDS
            elif time.monotonic() > self._exit_deadline:
                self.kill_all()
                self.workers.clear()
                self.dying.clear()
                return True
            return False
        return True


def _newest(worker: Worker) -> int:
    return worker.in_flight[-1].task_id
