"""Fixtures for the pool's tests: every pool a test starts is shut down when it ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from forklift.pool import ProcessPool, shutdown_reusable_executor


@pytest.fixture
def make_pool() -> Iterator[Callable[..., ProcessPool]]:
    pools: list[ProcessPool] = []

    def make(*args: Any, **kwargs: Any) -> ProcessPool:
        pool = ProcessPool(*args, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True, kill_workers=True)
    shutdown_reusable_executor(kill_workers=True)
