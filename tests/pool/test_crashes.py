"""Workers that die under a task: a real SIGKILL, a real segfault, os._exit."""

from __future__ import annotations

import os
import signal
import time

import pytest
from tests.pool import pool_helpers as helpers

from forklift.errors import TerminatedWorkerError
from forklift.pool import ProcessPool


def _assert_recovers(pool: ProcessPool) -> None:
    assert [f.result(timeout=30) for f in [pool.submit(helpers.square, i) for i in range(4)]] == [
        0,
        1,
        4,
        9,
    ]


def test_sigkill_from_outside_names_signal_and_function(make_pool) -> None:
    pool = make_pool(1)
    future = pool.submit(helpers.sleep_then_pid, 30)
    assert helpers.wait_until(lambda: bool(pool.worker_pids()) and future.running())
    time.sleep(0.2)
    (victim,) = pool.worker_pids()
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(TerminatedWorkerError) as caught:
        future.result(timeout=10)
    message = str(caught.value)
    assert "SIGKILL" in message
    assert "sleep_then_pid" in message
    assert str(victim) in message
    _assert_recovers(pool)
    assert victim not in pool.worker_pids()


def test_segfault_through_ctypes(make_pool) -> None:
    pool = make_pool(1)
    with pytest.raises(TerminatedWorkerError, match=r"SIGSEGV.*|segfault") as caught:
        pool.submit(helpers.segfault).result(timeout=30)
    assert "segfault" in str(caught.value)
    _assert_recovers(pool)


def test_os_exit_names_exit_code(make_pool) -> None:
    pool = make_pool(2)
    with pytest.raises(TerminatedWorkerError, match="exited with code 7") as caught:
        pool.submit(helpers.hard_exit, 7).result(timeout=30)
    assert "hard_exit" in str(caught.value)
    _assert_recovers(pool)


def test_tasks_queued_behind_a_crash_run_elsewhere(make_pool) -> None:
    pool = make_pool(2, prefetch=2)
    pool.warm_up(2)
    crash = pool.submit(helpers.kill_myself)
    others = [pool.submit(helpers.square, i) for i in range(20)]
    with pytest.raises(TerminatedWorkerError):
        crash.result(timeout=30)
    assert [f.result(timeout=30) for f in others] == [i * i for i in range(20)]


def test_shutdown_leaves_no_process(make_pool) -> None:
    pool = make_pool(2)
    pool.warm_up(2)
    pids = pool.worker_pids()
    server = pool.server_pid()
    assert len(pids) == 2 and server is not None
    pool.shutdown(wait=True)
    assert helpers.wait_until(lambda: not any(helpers.pid_alive(p) for p in [*pids, server]))


def test_kill_workers_kills_process_trees(make_pool, tmp_path) -> None:
    pool = make_pool(1)
    pid_file = tmp_path / "grandchild.pid"
    pool.submit(helpers.start_grandchild, str(pid_file))
    assert helpers.wait_until(pid_file.exists)
    assert helpers.wait_until(lambda: pid_file.read_text().strip() != "")
    grandchild = int(pid_file.read_text())
    assert helpers.pid_alive(grandchild)
    pool.shutdown(wait=True, kill_workers=True)
    assert helpers.wait_until(lambda: not helpers.pid_alive(grandchild))


def test_a_dead_fork_server_is_replaced(make_pool) -> None:
    pool = make_pool(1)
    pool.warm_up(1)
    server = pool.server_pid()
    (worker,) = pool.worker_pids()
    os.kill(server, signal.SIGKILL)
    os.kill(worker, signal.SIGKILL)
    assert helpers.wait_until(lambda: pool.worker_pids() == [])
    assert pool.submit(helpers.square, 9).result(timeout=30) == 81
    assert pool.server_pid() not in (None, server)
    # A crash is still reported with its signal: the new server reports exit statuses.
    with pytest.raises(TerminatedWorkerError, match="SIGKILL"):
        pool.submit(helpers.kill_myself).result(timeout=30)


PARENT_SCRIPT = """
import time
from forklift.pool import ProcessPool
pool = ProcessPool(2)
pool.warm_up(2)
busy = pool.submit(time.sleep, 60)
time.sleep(0.3)
print(*pool.worker_pids(), pool.server_pid(), flush=True)
time.sleep(60)
"""


def test_workers_and_server_exit_when_the_caller_is_killed() -> None:
    import subprocess
    import sys

    with subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            pids = [int(pid) for pid in parent.stdout.readline().split()]
            assert len(pids) == 3
            parent.kill()  # SIGKILL: no atexit, no cleanup in the caller
            parent.wait(timeout=10)
            assert helpers.wait_until(
                lambda: not any(helpers.pid_alive(pid) for pid in pids), timeout=10
            ), [pid for pid in pids if helpers.pid_alive(pid)]
        finally:
            if parent.poll() is None:
                parent.kill()
