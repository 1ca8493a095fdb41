"""Tasks pickled with a sharing scope: the standard pickler first, cloudpickle when a class
must travel by value; and starting workers without waiting for them."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import cloudpickle
from tests.pool import pool_helpers as helpers

from forklift.pool import ProcessPool, SharingScope
from forklift.pool.sharing import dumps_scoped


def read_value(item: object) -> object:
    return item.value  # type: ignore[attr-defined]


def test_local_class_travels_by_value(make_pool) -> None:
    class Local:
        def __init__(self, value: int) -> None:
            self.value = value

    pool: ProcessPool = make_pool(1)
    scope = SharingScope()
    future = pool.submit_task(read_value, (Local(7),), scope=scope)
    assert future.result(timeout=30) == 7
    pool.release_scope(scope)


def test_module_registered_by_value_after_a_first_task(make_pool, tmp_path: Path) -> None:
    # A class first pickled by name, then its module registered with cloudpickle for
    # pickling by value and removed from disk: the workers can only get it by value.
    (tmp_path / "forklift_by_value_probe.py").write_text(
        "class Probe:\n    def __init__(self, value):\n        self.value = value\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("forklift_by_value_probe")
        scope = SharingScope()
        payload, _ = dumps_scoped(module.Probe(1), scope)
        assert b"forklift_by_value_probe" in payload  # by name: importable here
        (tmp_path / "forklift_by_value_probe.py").unlink()
        cloudpickle.register_pickle_by_value(module)
        try:
            pool: ProcessPool = make_pool(1)
            future = pool.submit_task(read_value, (module.Probe(5),), scope=scope)
            assert future.result(timeout=30) == 5
            pool.release_scope(scope)
        finally:
            cloudpickle.unregister_pickle_by_value(module)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("forklift_by_value_probe", None)


def test_start_workers_does_not_wait(make_pool) -> None:
    pool: ProcessPool = make_pool(2)
    assert pool.worker_pids() == []
    assert pool.start_workers(2) is None
    assert helpers.wait_until(lambda: len(pool.worker_pids()) == 2, timeout=30)
