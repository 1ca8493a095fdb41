"""The pure parts of resilient runs: retry schedule, failure records, per-task seeds."""

from __future__ import annotations

import random

import numpy as np
import pytest

from forklift._support.task_context import TaskContext, current_task
from forklift.errors import ConfigurationError, TerminatedWorkerError
from forklift.parallel.failures import TaskFailure, summarise
from forklift.parallel.randomness import task_rng, task_seed
from forklift.parallel.retries import RetryPolicy, as_retry_policy


def test_retry_only_listed_exceptions_and_only_so_often() -> None:
    policy = as_retry_policy(2, retry_on=(ValueError, TerminatedWorkerError))
    assert policy.should_retry(ValueError("x"), failures_so_far=1)
    assert policy.should_retry(TerminatedWorkerError("gone"), failures_so_far=2)
    assert not policy.should_retry(ValueError("x"), failures_so_far=3)
    assert not policy.should_retry(KeyError("k"), failures_so_far=1)
    assert not as_retry_policy(0).should_retry(ValueError(), failures_so_far=1)


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(attempts=5, backoff=0.5, factor=2, max_backoff=3, jitter=0)
    assert [policy.delay_before(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittery = RetryPolicy(attempts=1, backoff=1.0, jitter=0.2)
    delays = {round(jittery.delay_before(1, random.Random(seed)), 6) for seed in range(20)}
    assert len(delays) > 1 and all(0.8 <= d <= 1.2 for d in delays)


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": -1}, {"attempts": True}, {"on": (int,)}, {"backoff": -1.0}, {"jitter": 1.5}],
)
def test_bad_policies(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_task_failure_record_and_summary() -> None:
    failures = [
        TaskFailure(i, "f", (i,), {}, ValueError(f"bad {i}"), "Traceback ...", attempts=2)
        for i in range(7)
    ] + [TaskFailure(9, "g", (), {}, KeyError("k"), "")]
    assert not failures[0]
    assert "task 0, f(): ValueError: bad 0" in repr(failures[0])
    with pytest.raises(ValueError, match="bad 3"):
        failures[3].reraise()
    text = summarise(failures, total=20)
    assert text.splitlines()[0] == "8 of 20 tasks failed:"
    assert "ValueError x7 (tasks 0, 1, 2, 3, 4 and 2 more): bad 0" in text
    assert "KeyError x1 (tasks 9)" in text
    assert summarise([], total=3) == "all 3 tasks succeeded"


def in_task(index: int, seed: int | None, function):  # type: ignore[no-untyped-def]
    token = current_task.set(TaskContext(index, seed))
    try:
        return function()
    finally:
        current_task.reset(token)


def test_task_streams_depend_only_on_seed_and_position() -> None:
    first = in_task(3, 42, lambda: task_rng().random(4))
    again = in_task(3, 42, lambda: task_rng().random(4))
    other_task = in_task(4, 42, lambda: task_rng().random(4))
    other_seed = in_task(3, 43, lambda: task_rng().random(4))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other_task)
    assert not np.array_equal(first, other_seed)
    assert in_task(3, 42, task_seed) == in_task(3, 42, task_seed) != in_task(4, 42, task_seed)


def test_task_streams_outside_a_seeded_run() -> None:
    with pytest.raises(ConfigurationError, match="seed"):
        task_rng()
    with pytest.raises(ConfigurationError, match="seed"):
        in_task(0, None, task_seed)
