"""``multiprocessing.Manager()`` proxies work in forklift's workers, as task arguments and in
``initargs``: the workers learn the caller's authkey over the pool's authenticated socket."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from multiprocessing.managers import SyncManager
from typing import Any

import pytest

from forklift import Parallel, delayed
from forklift.pool import ProcessPool

_QUEUE: list[Any] = []


@pytest.fixture
def manager() -> Iterator[SyncManager]:
    with multiprocessing.Manager() as started:
        yield started


def _report_progress(queue: Any, item: int) -> int:
    queue.put((item, os.getpid()))
    return item * 2


def _fill(shared: Any, counter: Any, lock: Any, item: int) -> None:
    with lock:
        shared[item] = item * item
        counter.value += 1


def _keep_queue(queue: Any) -> None:
    _QUEUE.append(queue)


def _put_from_initializer_queue(item: int) -> int:
    _QUEUE[0].put(item)
    return os.getpid()


def test_a_manager_queue_reports_progress_from_tasks(manager: SyncManager) -> None:
    queue = manager.Queue()
    results = Parallel(n_jobs=2, backend="loky")(
        delayed(_report_progress)(queue, item) for item in range(6)
    )
    assert results == [0, 2, 4, 6, 8, 10]
    received = sorted(queue.get(timeout=10) for _ in range(6))
    assert [item for item, _ in received] == list(range(6))
    assert all(pid != os.getpid() for _, pid in received)  # really from worker processes


def test_manager_dict_value_and_lock_as_arguments(manager: SyncManager) -> None:
    shared = manager.dict()
    counter = manager.Value("i", 0)
    lock = manager.Lock()
    Parallel(n_jobs=2, backend="loky")(delayed(_fill)(shared, counter, lock, i) for i in range(8))
    assert dict(shared) == {i: i * i for i in range(8)}
    assert counter.value == 8


def test_a_manager_queue_in_initargs(manager: SyncManager, make_pool: Any) -> None:
    queue = manager.Queue()
    pool: ProcessPool = make_pool(2, initializer=_keep_queue, initargs=(queue,))
    pids = {pool.submit(_put_from_initializer_queue, item).result(timeout=60) for item in range(4)}
    assert os.getpid() not in pids
    assert sorted(queue.get(timeout=10) for _ in range(4)) == [0, 1, 2, 3]
