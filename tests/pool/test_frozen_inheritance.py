"""Workers do not collect, or copy, what they inherit from the fork server (gc.freeze)."""

from __future__ import annotations

import gc
from collections.abc import Callable

from forklift.pool import ProcessPool


def _collector_state() -> tuple[bool, int, int]:
    return gc.isenabled(), gc.get_freeze_count(), len(gc.get_objects())


def test_a_worker_inherits_frozen_objects_and_collects_its_own(
    make_pool: Callable[..., ProcessPool],
) -> None:
    pool = make_pool(1)
    enabled, frozen, tracked = pool.submit(_collector_state).result(timeout=60)
    assert enabled  # the worker's own garbage is still collected
    # forklift, cloudpickle and the standard library's modules: thousands of objects that
    # the worker's collections no longer walk (a fresh worker tracks only what it made).
    assert frozen > 5_000
    assert tracked < frozen
