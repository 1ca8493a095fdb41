"""The worker pauses the garbage collector while it unpickles a task, and only then."""

from __future__ import annotations

import gc
from typing import Any


class _CollectorStateWhenUnpickled:
    """Unpickles as whether the collector was enabled at that moment."""

    def __reduce__(self) -> tuple[Any, ...]:
        return gc.isenabled, ()


def test_the_collector_is_paused_while_a_task_unpickles(make_pool) -> None:
    pool = make_pool(max_workers=1)
    assert pool.submit(bool, _CollectorStateWhenUnpickled()).result(timeout=30) is False
    assert pool.submit(gc.isenabled).result(timeout=30) is True  # back for the call itself
