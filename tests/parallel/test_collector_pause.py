"""A run pauses the garbage collector while it pulls many tiny calls, and gives it back:
before results reach user code, and when the run ends."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from forklift import Parallel, delayed
from forklift._support.gc_pause import MAX_PAUSE_SECONDS

N_CALLS = 20_000


def _calls(seen: list[bool]) -> Iterator[tuple[object, tuple[int], dict[str, object]]]:
    for i in range(N_CALLS):
        seen.append(gc.isenabled())
        yield delayed(abs)(i)


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_a_list_run_pauses_the_collector_while_pulling_and_gives_it_back(backend: str) -> None:
    assert gc.isenabled()
    seen: list[bool] = []
    assert Parallel(n_jobs=2, backend=backend)(_calls(seen)) == list(range(N_CALLS))
    assert gc.isenabled()
    assert seen[0] is True  # nothing is known of the generator yet
    assert seen.count(False) > N_CALLS // 2


def test_a_generator_run_never_hands_a_result_over_with_the_collector_paused() -> None:
    seen: list[bool] = []
    states = [gc.isenabled() for _ in Parallel(n_jobs=2, return_as="generator")(_calls(seen))]
    assert seen.count(False) > N_CALLS // 2  # it did pause while pulling
    assert all(states) and len(states) == N_CALLS
    assert gc.isenabled()


def test_an_error_in_the_generator_gives_the_collector_back() -> None:
    def failing() -> Iterator[tuple[object, tuple[int], dict[str, object]]]:
        yield from _calls([])
        raise ValueError("the input broke")

    with pytest.raises(ValueError, match="the input broke"):
        Parallel(n_jobs=2)(failing())
    assert gc.isenabled()


def _collector_state_after_a_while() -> bool:
    time.sleep(MAX_PAUSE_SECONDS * 5)
    return gc.isenabled()


def test_a_run_waiting_on_a_slow_task_gives_the_collector_back_in_time() -> None:
    def calls() -> Iterator[tuple[object, tuple[object, ...], dict[str, object]]]:
        yield from _calls([])
        yield delayed(_collector_state_after_a_while)()

    results = Parallel(n_jobs=2, backend="threading")(calls())
    assert results[-1] is True


def test_tasks_run_inline_never_run_with_the_collector_paused() -> None:
    # (Threads run tasks while the caller pulls the next calls, under a pull's pause.)
    seen: list[bool] = []

    def calls() -> Iterator[tuple[object, tuple[object, ...], dict[str, object]]]:
        for _ in _calls(seen):
            yield delayed(gc.isenabled)()

    states = Parallel(n_jobs=1)(calls())
    assert seen.count(False) > N_CALLS // 2  # it did pause while pulling
    assert all(states)
