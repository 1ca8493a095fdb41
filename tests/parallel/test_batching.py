from __future__ import annotations

import math
import time

from forklift import Parallel, delayed
from forklift.parallel.batching import (
    MAX_GROWTH,
    MIN_TAIL_BATCH_SECONDS,
    TAIL_QUEUE_SECONDS,
    BatchSizer,
    batches_in_flight,
    next_batch_size,
    tail_batch_size,
)
from forklift.progress.events import BatchDispatched


def test_long_tasks_stay_alone() -> None:
    assert next_batch_size(1, 1.0, 0.05, 10_000) == 1
    assert next_batch_size(500, 0.2, 0.05, 10_000) == 1


def test_tiny_tasks_are_grouped_but_growth_is_capped_per_step() -> None:
    assert next_batch_size(1, 1e-7, 0.05, 10_000) == MAX_GROWTH
    assert next_batch_size(MAX_GROWTH, 1e-7, 0.05, 10_000) == MAX_GROWTH**2


def test_size_aims_at_the_target_duration() -> None:
    assert next_batch_size(1000, 0.001, 0.05, 10_000) == 50
    assert next_batch_size(1000, 0.0001, 0.1, 10_000) == 1000


def test_maximum_is_respected() -> None:
    assert next_batch_size(10_000, 1e-9, 0.05, 2_000) == 2_000


def test_zero_duration_grows() -> None:
    assert next_batch_size(4, 0.0, 0.05, 10_000) == 4 * MAX_GROWTH


def test_sizer_grows_on_tiny_tasks_and_shrinks_at_once_on_slow_ones() -> None:
    sizer = BatchSizer(target_seconds=0.05)
    for _ in range(4):
        sizer.observe(sizer.size, sizer.size * 1e-6)
    assert sizer.size >= 1000
    sizer.observe(sizer.size, sizer.size * 0.5)  # tasks suddenly take 0.5 s each
    assert sizer.size == 1


def test_sizer_ignores_empty_batches() -> None:
    sizer = BatchSizer(target_seconds=0.05)
    sizer.observe(0, 1.0)
    assert sizer.size == 1


def test_the_last_calls_are_split_among_the_workers() -> None:
    assert tail_batch_size(2, 4, 2, 0.02) == 1
    assert tail_batch_size(10, 400, 2, 0.001) == 10  # the end is not near yet
    assert tail_batch_size(8_000, 12_000, 2, 1e-5) == 3_000
    assert tail_batch_size(8_000, 12_000, 2, None) == 3_000
    # Short tasks: no batch below MIN_TAIL_BATCH_SECONDS of work (the hand-off costs more).
    floor = math.ceil(MIN_TAIL_BATCH_SECONDS / 1e-5)
    assert tail_batch_size(8_000, 1_000, 2, 1e-5) == floor < 1_000 // 4 * 2
    assert tail_batch_size(8_000, 100, 2, 1e-5) == 100
    assert tail_batch_size(8_000, 12_000, 2, 3e-7) == 8_000  # tiny: not split


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_a_run_ends_with_small_batches_though_its_length_is_unknown() -> None:
    dispatched: list[BatchDispatched] = []
    results = Parallel(
        n_jobs=2,
        reporters=[lambda event: isinstance(event, BatchDispatched) and dispatched.append(event)],
    )(delayed(nap)(0.004) for _ in range(200))
    assert len(results) == 200
    sizes = [event.n_tasks for event in dispatched]
    assert max(sizes) > 2, sizes  # tasks were grouped (4 ms tasks, 50 ms batches)...
    assert sizes[-3:] == [1, 1, 1], sizes  # ...and the last ones go one by one
    assert sum(sizes) == 200


def test_the_last_tasks_are_not_queued_behind_busy_workers_unless_tiny() -> None:
    assert batches_in_flight(4, 2, 0.02, 0.05) == 4  # mid-run: queue ahead
    assert batches_in_flight(4, 2, 0.02, 0.05, ending=True) == 2
    assert batches_in_flight(4, 2, TAIL_QUEUE_SECONDS / 10, 0.05, ending=True) == 4
