"""Starting, resizing, recycling and retiring workers; the shared reusable pool."""

from __future__ import annotations

import concurrent.futures
import threading
import time

from tests.pool import pool_helpers as helpers

from forklift.pool import (
    ProcessPool,
    get_reusable_executor,
    shutdown_reusable_executor,
    warm_up,
)


def test_idle_workers_exit_after_timeout(make_pool) -> None:
    pool: ProcessPool = make_pool(2, idle_worker_timeout=0.3)
    pool.warm_up(2)
    pids = pool.worker_pids()
    assert len(pids) == 2
    assert helpers.wait_until(lambda: pool.worker_pids() == [], timeout=10)
    assert helpers.wait_until(lambda: not any(helpers.pid_alive(p) for p in pids))
    # Work brings fresh workers back.
    assert pool.submit(helpers.square, 3).result(timeout=30) == 9


def test_max_tasks_per_child_recycles_workers(make_pool) -> None:
    pool = make_pool(1, max_tasks_per_child=2)
    pids = [pool.submit(helpers.pid_of_worker).result(timeout=30) for _ in range(6)]
    assert len(set(pids)) == 3
    assert [pids.count(pid) for pid in dict.fromkeys(pids)] == [2, 2, 2]


def test_memory_growth_limit_recycles_workers(make_pool) -> None:
    pool = make_pool(1, memory_growth_limit=20_000_000)
    first = pool.submit(helpers.pid_of_worker).result(timeout=30)
    pool.submit(helpers.remember, "ballast", b"x" * 60_000_000).result(timeout=30)
    assert helpers.wait_until(lambda: first not in pool.worker_pids())
    assert pool.submit(helpers.pid_of_worker).result(timeout=30) != first


def test_resize_down_never_kills_a_busy_worker(make_pool) -> None:
    pool = make_pool(2)
    pool.warm_up(2)
    busy = pool.submit(helpers.sleep_then_pid, 1.0)
    time.sleep(0.2)
    pool.resize(1)
    assert isinstance(busy.result(timeout=30), int)  # it finished: not killed to shrink
    assert helpers.wait_until(lambda: len(pool.worker_pids()) == 1)
    pool.resize(3)
    assert pool.warm_up(3) == 3


def test_warm_up_starts_workers_ahead(make_pool) -> None:
    pool = make_pool(2)
    assert pool.worker_pids() == []
    assert pool.warm_up(2) == 2
    assert len(pool.worker_pids()) == 2


def test_reusable_executor_is_shared_and_resized() -> None:
    try:
        first = get_reusable_executor(1)
        assert get_reusable_executor(2) is first
        assert first.max_workers == 2
        other = get_reusable_executor(2, initializer=helpers.remember, initargs=("k", 1))
        assert other is not first
        assert other.submit(helpers.recall, "k").result(timeout=30) == 1
        assert get_reusable_executor(2, reuse=False) is not other
        assert warm_up(2) == 2
    finally:
        shutdown_reusable_executor()


def test_two_threads_share_the_pool(make_pool) -> None:
    pool = make_pool(2)
    results: dict[int, list[int]] = {}

    def run(key: int) -> None:
        futures = [pool.submit(helpers.square, key * 100 + i) for i in range(50)]
        results[key] = [f.result(timeout=30) for f in futures]

    threads = [threading.Thread(target=run, args=(key,)) for key in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {key: [(key * 100 + i) ** 2 for i in range(50)] for key in range(2)}


def test_cancelled_futures_do_not_run(make_pool) -> None:
    pool = make_pool(1)
    blocker = pool.submit(helpers.sleep_then_pid, 0.5)
    queued = [pool.submit(helpers.square, i) for i in range(5)]
    cancelled = [f for f in queued if f.cancel()]
    assert cancelled
    blocker.result(timeout=30)
    for future in queued:
        if future in cancelled:
            assert future.cancelled()
        else:
            future.result(timeout=30)
    concurrent.futures.wait(queued, timeout=10)
