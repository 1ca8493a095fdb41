"""The engine's helpers alone: the retry queue, task_timeout's clock, a batch's pickling."""

from __future__ import annotations

import gc
import pickle
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from forklift._support.gc_pause import MAX_PAUSE_SECONDS
from forklift.config import Settings
from forklift.errors import InvalidTaskError
from forklift.parallel.backends.base import Batch, Call, run_batch
from forklift.parallel.ordering import ResultOrder
from forklift.parallel.retries import RetryQueue
from forklift.parallel.task_clock import START_POLL_SECONDS, TaskClock
from forklift.parallel.tasks import PAUSE_SLICE, TaskSource


def test_retries_come_due_earliest_first_and_ties_in_failure_order() -> None:
    queue = RetryQueue()
    assert not queue and queue.next_ready_at() is None
    queue.push(2.0, 7, (abs, (7,), {}))
    queue.push(1.0, 3, (abs, (3,), {}))
    queue.push(1.0, 1, (abs, (1,), {}))
    assert queue.next_ready_at() == 1.0
    assert queue.pop_due(0.5) is None
    assert [queue.pop_due(1.5), queue.pop_due(1.5), queue.pop_due(1.5)] == [
        (3, (abs, (3,), {})),
        (1, (abs, (1,), {})),
        None,
    ]
    assert queue.pop_due(2.0) == (7, (abs, (7,), {}))
    assert not queue


def test_a_task_clock_starts_when_the_task_runs() -> None:
    clock = TaskClock(task_timeout=10.0)
    waiting: Future[Any] = Future()
    running: Future[Any] = Future()
    assert running.set_running_or_notify_cancel()
    futures = {0: waiting, 1: running}
    # Task 1 runs from now (100.0); task 0 is polled for again soon.
    assert clock.next_deadline(futures, now=100.0) == 100.0 + START_POLL_SECONDS
    assert clock.expired(futures.items(), now=109.0) == []
    assert clock.expired(futures.items(), now=110.0) == [1]
    assert clock.expired(futures.items(), now=200.0) == []  # given up once
    assert waiting.set_running_or_notify_cancel()
    assert clock.next_deadline({0: waiting}, now=200.0) == 210.0
    clock.forget(0)
    assert clock.next_deadline({}, now=300.0) == 310.0


def _keyword(x: int, *, scale: int = 1) -> int:
    return x * scale


def test_a_batch_pickles_its_calls_as_columns_and_back() -> None:
    settings = Settings()
    same = Batch(3, 10, [(abs, (-i,), {}) for i in range(1000)], settings, True, 7)
    mixed = Batch(
        0, 0, [(abs, (-1,), {}), (_keyword, (2,), {"scale": 3}), (abs, (4,), {})], settings
    )
    for batch in (same, mixed):
        copy = pickle.loads(pickle.dumps(batch))
        assert copy == batch
        assert run_batch(copy).results == run_batch(batch).results
    # The shared function travels once, and no empty dicts travel at all.
    columns = len(pickle.dumps(same)) - len(pickle.dumps(settings))
    assert columns < len(pickle.dumps(same.calls)) * 0.6


def test_looking_ahead_keeps_order_positions_and_the_end() -> None:
    source = TaskSource([(abs, (-i,), {}) for i in range(5)] + ["not a call"])
    assert source.look_ahead(3) is None  # the end is not seen yet
    assert source.take(2) == [(abs, (0,), {}), (abs, (-1,), {})]
    with pytest.raises(InvalidTaskError, match="item 5 of the task iterable"):
        source.look_ahead(10)
    source = TaskSource((abs, (-i,), {}) for i in range(5))
    assert source.take(1) == [(abs, (0,), {})]
    assert source.look_ahead(10) == 4 and not source.exhausted
    assert source.take(3) == [(abs, (-1,), {}), (abs, (-2,), {}), (abs, (-3,), {})]
    assert source.remaining == 1 and source.n_taken == 4
    assert source.take(3) == [(abs, (-4,), {})] and source.exhausted
    assert source.take(3) == []


def test_results_leave_in_input_order_whatever_order_batches_complete() -> None:
    order = ResultOrder(ordered=True)
    order.add(3, ["d", "e"])
    order.add(1, ["b", "c"])
    assert order.take() == []
    order.add(0, ["a"])
    assert order.take() == [["a"], ["b", "c"], ["d", "e"]]
    order.add(5, [])  # nothing to hand over
    order.add(5, ["f"])
    assert order.take() == [["f"]]
    unordered = ResultOrder(ordered=False)
    unordered.add(3, ["d"])
    unordered.add(0, ["a"])
    assert unordered.take() == [["d"], ["a"]]


def _recording_collector_state(n: int, seconds_per_item: float = 0.0) -> Iterator[Call]:
    for _ in range(n):
        if seconds_per_item:
            time.sleep(seconds_per_item)
        yield (bool, (gc.isenabled(),), {})


def test_large_pulls_from_a_fast_generator_pause_the_collector_until_told() -> None:
    assert gc.isenabled()
    source = TaskSource(_recording_collector_state(5 * PAUSE_SLICE))
    first = source.take(1)  # before any pull is timed: no pause
    assert source.pause_deadline is None
    rest = source.take(2 * PAUSE_SLICE)
    assert first[0][1] == (True,)
    assert [call[1][0] for call in rest] == [False] * (2 * PAUSE_SLICE)
    assert not gc.isenabled()  # the pause outlives the pull, until the engine ends it
    deadline = source.pause_deadline
    assert deadline is not None and deadline <= time.perf_counter() + MAX_PAUSE_SECONDS
    source.end_pause(only_if_expired=True)
    assert not gc.isenabled()  # not expired yet
    source.end_pause()
    assert gc.isenabled() and source.pause_deadline is None


def test_an_expired_pause_lets_one_pull_run_unpaused() -> None:
    source = TaskSource(_recording_collector_state(4 * PAUSE_SLICE))
    source.take(1)
    source._item_seconds = 0.0  # as if the generator had been fast so far
    try:
        source.take(PAUSE_SLICE)
        time.sleep(MAX_PAUSE_SECONDS * 1.5)
        unpaused = source.take(PAUSE_SLICE)
        paused_again = source.take(PAUSE_SLICE)
    finally:
        source.end_pause()
    assert all(call[1][0] for call in unpaused)
    assert not any(call[1][0] for call in paused_again)
    assert gc.isenabled()


def test_a_slow_generator_keeps_the_collector_running() -> None:
    # Each slice of items takes longer than a pause may last: after the first slice the
    # pull is not paused, and the next pull not at all.
    slow = MAX_PAUSE_SECONDS / PAUSE_SLICE * 2
    source = TaskSource(_recording_collector_state(3 * PAUSE_SLICE, slow))
    source.take(1)
    source._item_seconds = 0.0  # as if the generator had been fast so far
    try:
        states = [call[1][0] for call in source.take(2 * PAUSE_SLICE)]
        assert states[: PAUSE_SLICE - 1] == [False] * (PAUSE_SLICE - 1)
        assert all(states[PAUSE_SLICE:])
        assert all(call[1][0] for call in source.take(PAUSE_SLICE))
    finally:
        source.end_pause()
    assert gc.isenabled()
