"""Cancelling a scope: queued tasks go at once, running ones get a grace, then their worker
is killed; a cancel never waits for the pool's lock. Real workers, real sleeps."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError

import psutil
import pytest
from tests.pool.pool_helpers import pid_of_worker, sleep_then_pid

from forklift.pool import ProcessPool, SharingScope


def _wait_until(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_a_task_that_ends_within_the_grace_keeps_its_worker(
    make_pool: Callable[..., ProcessPool],
) -> None:
    pool = make_pool(1, prefetch=1)  # the second task waits in the pool, not in the worker
    assert pool.warm_up() == 1
    [pid] = pool.worker_pids()
    scope = SharingScope()
    running = pool.submit_task(sleep_then_pid, (0.5,), scope=scope)
    queued = pool.submit_task(sleep_then_pid, (0.5,), scope=scope)
    assert _wait_until(running.running)
    pool.cancel_scope(scope, grace=10.0)
    # Both given up at once: the queued one cancelled, the running one failed as cancelled.
    assert queued.cancelled()
    with pytest.raises(CancelledError):
        running.result(timeout=1)
    # Meanwhile it takes no task; it ends this one well within the grace and rejoins.
    assert pool.n_workers == 0
    assert _wait_until(lambda: pool.n_workers == 1)
    assert pool.submit(pid_of_worker).result(timeout=30) == pid
    assert pool.worker_pids() == [pid]
    pool.release_scope(scope)


def test_a_task_past_the_grace_has_its_worker_killed_and_replaced(
    make_pool: Callable[..., ProcessPool],
) -> None:
    pool = make_pool(1)
    assert pool.warm_up() == 1
    [stuck] = pool.worker_pids()
    scope = SharingScope()
    abandoned = pool.submit_task(sleep_then_pid, (60,), scope=scope)
    assert _wait_until(abandoned.running)
    cancelled_at = time.monotonic()
    pool.cancel_scope(scope, grace=1.0)
    # Other work starts at once, on a replacement, while the abandoned task has its grace.
    other = pool.submit(pid_of_worker).result(timeout=30)
    assert other != stuck
    assert _wait_until(lambda: not psutil.pid_exists(stuck))
    assert time.monotonic() - cancelled_at < 30  # killed, not waited for (60 s)
    assert _wait_until(lambda: pool.worker_pids() == [other])  # its death noticed too
    pool.release_scope(scope)


def test_cancel_from_a_thread_holding_the_pool_lock_does_not_deadlock(
    make_pool: Callable[..., ProcessPool],
) -> None:
    """What a finalizer run by the garbage collector inside the pool amounts to."""
    pool = make_pool(1, prefetch=1)
    scope = SharingScope()
    blocker = pool.submit_task(sleep_then_pid, (60,), scope=scope)
    queued = pool.submit_task(sleep_then_pid, (60,), scope=scope)
    assert _wait_until(blocker.running)
    returned = threading.Event()

    def finalizer_inside_the_pool() -> None:
        with pool._lock:  # the lock a manager or caller thread holds when gc strikes
            pool.cancel_scope(scope)
            pool.release_scope(scope)
            returned.set()

    thread = threading.Thread(target=finalizer_inside_the_pool, daemon=True)
    thread.start()
    thread.join(10)
    assert returned.is_set(), "cancel_scope waited for a lock its own thread held"
    # Applied moments later by the manager thread.
    assert _wait_until(lambda: queued.cancelled() and blocker.done())
    with pytest.raises(CancelledError):
        blocker.result(timeout=0)


def test_giving_the_shared_pool_back_inside_its_own_section_does_not_deadlock() -> None:
    """A call's generator finalized by the garbage collector while its thread is inside
    the shared pool's registry (e.g. starting a pool) gives the pool back afterwards."""
    from forklift.pool import reusable

    pool = reusable.acquire_executor(1)
    returned = threading.Event()

    def finalizer_inside_the_registry() -> None:
        with reusable._lock:
            reusable.release_executor(pool, 1)
            returned.set()

    thread = threading.Thread(target=finalizer_inside_the_registry, daemon=True)
    thread.start()
    thread.join(10)
    assert returned.is_set(), "release_executor waited for a lock its own thread held"
    assert pool not in reusable._leases  # applied as the section ended


STUCK_LOCK_AT_EXIT = textwrap.dedent(
    """
    import threading, time
    from forklift.pool import ProcessPool
    from tests.pool.pool_helpers import sleep_then_pid

    pool = ProcessPool(1)
    pool.submit(sleep_then_pid, 0.0).result(timeout=60)
    print(pool.worker_pids()[0], flush=True)
    pool.submit(sleep_then_pid, 600)      # a task that would outlive any patience

    def hold_forever():                   # stands for any bug that leaves the lock taken
        pool._lock.acquire()
        time.sleep(3600)

    threading.Thread(target=hold_forever, daemon=True).start()
    time.sleep(0.5)
    print("exiting", flush=True)
    """
)


def test_exit_never_hangs_even_with_the_pool_lock_stuck() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", STUCK_LOCK_AT_EXIT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            output, errors = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            for process in psutil.Process(child.pid).children(recursive=True):
                process.kill()
            child.kill()
            output, errors = child.communicate()
            pytest.fail(f"the interpreter did not exit: {output!r} {errors!r}")
    worker_pid, last = output.split()
    assert last == "exiting", errors
    assert _wait_until(lambda: not psutil.pid_exists(int(worker_pid)), 10)  # killed at exit
