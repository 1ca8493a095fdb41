"""The fork server's optional preloads (numpy) wait until it has been idle for a while, so
that the workers of a cold start do not share the cores with that import."""

from __future__ import annotations

import numpy  # noqa: F401 - imported in the caller: the pool's server preloads it when idle
import pytest
from tests.pool import pool_helpers as helpers

from forklift.pool import ProcessPool, _launcher


def _second_worker_has_numpy(make_pool) -> bool:  # type: ignore[no-untyped-def]
    pool: ProcessPool = make_pool(2)
    assert pool.warm_up(1) == 1
    assert pool.warm_up(2) == 2  # a second worker, asked for once the first one is up
    # Each of the two idle workers takes one of these calls (they overlap).
    futures = [pool.submit(helpers.pid_and_numpy_after, 0.3) for _ in range(2)]
    answers = dict(future.result(timeout=60) for future in futures)
    assert len(answers) == 2, "each worker answers once"
    first, second = sorted(answers)  # the second worker was forked later
    assert not answers[first]  # forked before the server had a chance to preload anything
    return answers[second]


def test_a_worker_asked_for_soon_after_another_does_not_wait_for_preloads(
    make_pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_launcher, "IDLE_PRELOAD_DELAY_SECONDS", 60.0)
    assert not _second_worker_has_numpy(make_pool)


def test_an_idle_server_preloads_numpy_for_later_workers(
    make_pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_launcher, "IDLE_PRELOAD_DELAY_SECONDS", 0.0)
    assert _second_worker_has_numpy(make_pool)
