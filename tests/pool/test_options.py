"""WorkerOptions: the worker options declared once, compared safely; Worker's one state."""

from __future__ import annotations

import socket
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np
import pytest

from forklift.pool import ProcessPool
from forklift.pool._records import Worker, WorkerState
from forklift.pool.options import THREAD_LIMIT_VARIABLES, WorkerOptions


class _EqualsEverything:
    def __call__(self) -> None:
        return None

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def test_equal_options_compare_equal_and_env_is_copied() -> None:
    env = {"A": "1"}
    first = WorkerOptions(initializer=print, initargs=[1, "x"], env=env, thread_limit=2)
    env["A"] = "2"
    assert first.env == {"A": "1"}
    assert first.initargs == (1, "x")
    assert first == WorkerOptions(
        initializer=print, initargs=(1, "x"), env={"A": "1"}, thread_limit=2
    )
    assert first != first.replace(thread_limit=3)
    assert first != first.replace(env={"A": "2"})


def test_callables_compare_by_identity() -> None:
    one, other = _EqualsEverything(), _EqualsEverything()
    assert WorkerOptions(initializer=one) == WorkerOptions(initializer=one)
    assert WorkerOptions(initializer=one) != WorkerOptions(initializer=other)


def test_arrays_in_initargs_count_as_different_without_raising() -> None:
    array = np.arange(3)
    assert WorkerOptions(initargs=(array,)) != WorkerOptions(initargs=(array.copy(),))


@pytest.mark.parametrize("name", ["max_tasks_per_child", "thread_limit"])
def test_counts_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        WorkerOptions(**{name: 0})


def test_server_environment_caps_threads_unless_set_and_env_wins() -> None:
    options = WorkerOptions(thread_limit=3, env={"OMP_NUM_THREADS": "7", "MINE": "1"})
    environment = options.server_environment({"MKL_NUM_THREADS": "5", "PATH": "/bin"})
    assert environment["MKL_NUM_THREADS"] == "5"
    assert environment["OMP_NUM_THREADS"] == "7"
    assert environment["MINE"] == "1" and environment["PATH"] == "/bin"
    others = set(THREAD_LIMIT_VARIABLES) - {"MKL_NUM_THREADS", "OMP_NUM_THREADS"}
    assert {environment[name] for name in others} == {"3"}


def test_a_pool_keeps_its_options_as_one_value(make_pool: Callable[..., ProcessPool]) -> None:
    pool = make_pool(1, max_tasks_per_child=4, env={"X": "1"})
    assert pool.options == WorkerOptions(max_tasks_per_child=4, env={"X": "1"})
    pool.set_thread_limit(2)
    assert pool.options.thread_limit == 2
    assert pool.submit(abs, -3).result(timeout=60) == 3


def test_a_worker_state_only_moves_forward_but_a_drain_ends() -> None:
    left, right = socket.socketpair()
    connection = Connection(left.detach())
    try:
        worker = Worker(1, 0, connection)
        assert worker.accepts_tasks
        worker.advance(WorkerState.DRAINING)
        assert not worker.accepts_tasks
        worker.end_drain()
        assert worker.state is WorkerState.ACTIVE
        worker.advance(WorkerState.KILLED)
        worker.advance(WorkerState.RETIRING)
        worker.end_drain()
        assert worker.state is WorkerState.KILLED
    finally:
        connection.close()
        right.close()


def test_the_public_signatures_hand_their_arguments_over_by_name() -> None:
    arguments = {
        "max_workers": 2,  # not a worker option: left out
        "initializer": print,
        "initargs": [1],
        "env": None,
        "max_tasks_per_child": 3,
        "memory_growth_limit": None,
        "thread_limit": 2,
    }
    options = WorkerOptions.from_arguments(arguments)
    assert options == WorkerOptions(
        initializer=print, initargs=(1,), max_tasks_per_child=3, thread_limit=2
    )
    assert options.env == {}
    with pytest.raises(KeyError, match="thread_limit"):  # a signature that lacks an option
        WorkerOptions.from_arguments({k: v for k, v in arguments.items() if k != "thread_limit"})
