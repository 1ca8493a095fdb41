"""``generator_unordered`` hands fast results over first, even next to a slow task.

Before any duration is measured a task may be slow or fast; tying a task to another then (in
one batch, or queued in a worker behind it) makes a fast result wait for a slow one. So the
engine sends single tasks, no more than one per worker, until durations are known.
"""

from __future__ import annotations

import time

import pytest

from forklift import Parallel, delayed

SLOW = 6.0


def task(index: int, slow: int) -> int:
    time.sleep(SLOW if index == slow else 0.01)
    return index


@pytest.mark.parametrize("backend", ["loky", "threading"])
@pytest.mark.parametrize("slow", [0, 1])  # among the first tasks sent, before any is measured
def test_nine_fast_results_come_before_the_slow_one(backend: str, slow: int) -> None:
    started = time.monotonic()
    arrivals: list[tuple[int, float]] = []
    for index in Parallel(n_jobs=2, backend=backend, return_as="generator_unordered")(
        delayed(task)(index, slow) for index in range(10)
    ):
        arrivals.append((index, time.monotonic() - started))
    order = [index for index, _ in arrivals]
    assert sorted(order) == list(range(10))
    assert order[-1] == slow, f"fast results waited behind the slow task: {arrivals}"
    fast_done = max(seconds for index, seconds in arrivals if index != slow)
    slow_done = dict(arrivals)[slow]
    assert fast_done < slow_done - 1.0, arrivals
