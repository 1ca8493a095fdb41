"""ProcessPool as a plain concurrent.futures.Executor: results, errors, closures, sharing."""

from __future__ import annotations

import concurrent.futures
import pickle
import threading
from pathlib import Path

import pytest
from tests.pool import pool_helpers as helpers

from forklift.errors import RemoteTraceback, TaskPicklingError
from forklift.pool import ProcessPool, SharingScope


def test_submit_and_map(make_pool) -> None:
    pool: ProcessPool = make_pool(2)
    assert pool.submit(helpers.square, 7).result(timeout=30) == 49
    assert list(pool.map(helpers.square, range(10))) == [x * x for x in range(10)]
    assert list(pool.map(helpers.square, range(100), chunksize=7)) == [x * x for x in range(100)]


def test_is_an_executor(make_pool) -> None:
    pool = make_pool(1)
    assert isinstance(pool, concurrent.futures.Executor)
    with pool:
        assert pool.submit(pow, 2, 10).result(timeout=30) == 1024
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(pow, 2, 2)


def test_lambdas_and_closures_travel_by_value(make_pool) -> None:
    pool = make_pool(2)
    offset = 5
    assert pool.submit(lambda x: x + offset, 1).result(timeout=30) == 6

    def local(x: int) -> int:
        return x * offset

    assert list(pool.map(local, [1, 2])) == [5, 10]


def test_task_error_keeps_type_and_remote_traceback(make_pool) -> None:
    pool = make_pool(1)
    future = pool.submit(helpers.fail, "boom")
    with pytest.raises(ValueError, match="boom") as caught:
        future.result(timeout=30)
    assert isinstance(caught.value.__cause__, RemoteTraceback)
    assert "in fail" in str(caught.value.__cause__)
    assert pool.submit(helpers.square, 3).result(timeout=30) == 9


def test_unpicklable_argument_fails_that_task_only(make_pool) -> None:
    pool = make_pool(1)
    future = pool.submit(helpers.square, threading.Lock())
    with pytest.raises(TaskPicklingError, match="square") as caught:
        future.result(timeout=30)
    assert isinstance(caught.value, pickle.PicklingError)
    assert pool.submit(helpers.square, 4).result(timeout=30) == 16


def test_unpicklable_result_fails_that_task_only(make_pool) -> None:
    pool = make_pool(1)
    future = pool.submit(threading.Lock)
    with pytest.raises(TaskPicklingError, match=r"could not be pickled.*lock"):
        future.result(timeout=30)
    assert pool.submit(helpers.square, 5).result(timeout=30) == 25


def test_initializer_runs_in_each_worker(make_pool) -> None:
    pool = make_pool(2, initializer=helpers.remember, initargs=("greeting", "hello"))
    assert pool.submit(helpers.recall, "greeting").result(timeout=30) == "hello"


def test_failing_initializer_breaks_the_pool_clearly(make_pool) -> None:
    from forklift.errors import WorkerStartError

    pool = make_pool(1, initializer=helpers.fail, initargs=("no init",))
    with pytest.raises(WorkerStartError, match="initializer") as caught:
        pool.submit(helpers.square, 2).result(timeout=30)
    assert "no init" in str(caught.value.__cause__)


def test_env_reaches_workers(make_pool) -> None:
    pool = make_pool(1, env={"FORKLIFT_TEST_VALUE": "42"}, thread_limit=1)
    assert pool.submit(helpers.environment, "FORKLIFT_TEST_VALUE").result(timeout=30) == "42"
    assert pool.submit(helpers.environment, "FORKLIFT_MAX_CPU_COUNT").result(timeout=30) == "1"


def test_shared_function_is_sent_once_per_worker_per_scope(make_pool, tmp_path: Path) -> None:
    log = tmp_path / "unpickled.txt"
    counter = helpers.CountsUnpickling(str(log), size=1_000_000)

    def uses_counter(x: int) -> int:
        return x + len(counter.blob)

    pool = make_pool(2)
    pool.warm_up(2)
    scope = SharingScope()
    futures = [pool.submit_task(uses_counter, (i,), scope=scope) for i in range(40)]
    assert [f.result(timeout=30) for f in futures] == [i + 1_000_000 for i in range(40)]
    loads = log.read_text().split()
    assert 1 <= len(loads) <= 2, loads  # once per worker, not once per task
    pool.release_scope(scope)
    # Without a scope the closure travels with every task.
    log.write_text("")
    futures = [pool.submit(uses_counter, i) for i in range(6)]
    [f.result(timeout=30) for f in futures]
    assert len(log.read_text().split()) == 6


def test_new_scope_sees_changed_globals(make_pool) -> None:
    pool = make_pool(1)
    box = {"value": 1}

    def read_box() -> int:
        return box["value"]

    first = SharingScope()
    assert pool.submit_task(read_box, scope=first).result(timeout=30) == 1
    pool.release_scope(first)
    box["value"] = 2
    second = SharingScope()
    assert pool.submit_task(read_box, scope=second).result(timeout=30) == 2
    pool.release_scope(second)


def test_cancel_scope_kills_running_and_cancels_queued(make_pool) -> None:
    pool = make_pool(1)
    scope = SharingScope()
    running = pool.submit_task(helpers.sleep_then_pid, (30,), scope=scope)
    queued = [pool.submit_task(helpers.sleep_then_pid, (30,), scope=scope) for _ in range(3)]
    assert helpers.wait_until(lambda: running.running())
    helpers.wait_until(lambda: bool(pool.worker_pids()))
    pool.cancel_scope(scope)
    for future in [running, *queued]:
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(timeout=10)
    assert pool.submit(helpers.square, 6).result(timeout=30) == 36


def test_large_closure_goes_through_shared_memory(make_pool) -> None:
    import numpy as np

    from forklift.pool.sharing import make_definition

    big = np.arange(1_000_000, dtype=np.float64)  # 8 MB: above the shared-memory threshold

    def reads_and_writes(x: int) -> float:
        big[0] = -1.0  # a private copy-on-write mapping: writable, never seen by the caller
        return float(big[x] + big.sum() * 0)

    definition = make_definition(reads_and_writes)
    assert definition.shared
    definition.close()
    pool = make_pool(2)
    scope = SharingScope()
    futures = [pool.submit_task(reads_and_writes, (i,), scope=scope) for i in range(1, 30)]
    assert [f.result(timeout=30) for f in futures] == [float(i) for i in range(1, 30)]
    assert big[0] == 0.0
    pool.release_scope(scope)
