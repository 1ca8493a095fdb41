from __future__ import annotations

from forklift.parallel.batching import MAX_GROWTH, BatchSizer, next_batch_size


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
