"""The contract every cache store must honour, run against each store forklift knows.

A tiny in-memory store lives here too: it shows a user-written store plugging in through
``register_store_backend``, and keeps the contract honest (nothing in it is filesystem-only).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forklift import Memory, StoreBackendBase, register_store_backend
from forklift.cache.stores.base import CallId, ItemInfo, ItemLock
from forklift.cache.stores.registry import create_store
from forklift.errors import ConfigurationError


class _DictLock(ItemLock):
    def __init__(self, lock: threading.Lock, timeout: float | None) -> None:
        self._lock, self._timeout = lock, timeout
        self._held = False

    def __enter__(self) -> bool:
        self._held = self._lock.acquire(timeout=-1 if self._timeout is None else self._timeout)
        return self._held

    def __exit__(self, *exc_info: object) -> None:
        if self._held:
            self._lock.release()


class DictStore(StoreBackendBase):
    """Entries in a dict: a complete, if volatile, store."""

    def configure(
        self, location: str, verbose: int = 0, backend_options: dict[str, Any] | None = None
    ) -> None:
        self.location = location
        self.items: dict[CallId, tuple[Any, dict[str, Any], float]] = {}
        self.records: dict[tuple[str, ...], dict[str, Any]] = {}
        self.locks: dict[CallId, threading.Lock] = {}

    def load_item(self, call_id: CallId, mmap_mode: str | None = None) -> Any:
        return self.items[call_id][0]

    def dump_item(
        self, call_id: CallId, value: Any, metadata: dict[str, Any], compress: Any = False
    ) -> int:
        self.items[call_id] = (value, metadata, time.time())
        return 1

    def contains_item(self, call_id: CallId) -> bool:
        return call_id in self.items

    def get_metadata(self, call_id: CallId) -> dict[str, Any] | None:
        entry = self.items.get(call_id)
        return None if entry is None else entry[1]

    def clear_item(self, call_id: CallId) -> None:
        self.items.pop(call_id, None)

    def clear_path(self, function: tuple[str, ...]) -> None:
        for call_id in [c for c in self.items if c.function == function]:
            del self.items[call_id]

    def clear(self) -> None:
        self.items.clear()
        self.records.clear()

    def get_items(self) -> list[ItemInfo]:
        return [ItemInfo(c, 1, t, t) for c, (_, _, t) in self.items.items()]

    def touch(self, call_id: CallId) -> None:
        if call_id in self.items:
            value, metadata, _ = self.items[call_id]
            self.items[call_id] = (value, metadata, time.time())

    def lock_item(self, call_id: CallId, timeout: float | None) -> ItemLock:
        return _DictLock(self.locks.setdefault(call_id, threading.Lock()), timeout)

    def read_function_record(self, function: tuple[str, ...]) -> dict[str, Any] | None:
        return self.records.get(function)

    def write_function_record(self, function: tuple[str, ...], record: dict[str, Any]) -> None:
        self.records[function] = record

    def drop_other_versions(self, function: tuple[str, ...], keep: str) -> int:
        doomed = [c for c in self.items if c.function == function and c.version != keep]
        for call_id in doomed:
            del self.items[call_id]
        return len(doomed)


register_store_backend("dict-test", DictStore)


@pytest.fixture(params=["local", "dict-test"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBackendBase]:
    created = create_store(request.param)
    created.configure(str(tmp_path / "store"))
    yield created
    created.clear()


ID = CallId(("pkg", "mod", "f"), "abc123", "00ff" * 8)
OTHER = CallId(("pkg", "mod", "f"), "abc123", "11ee" * 8)


def test_missing_item(store: StoreBackendBase) -> None:
    assert not store.contains_item(ID)
    assert store.get_metadata(ID) is None
    with pytest.raises(KeyError):
        store.load_item(ID)
    store.clear_item(ID)  # clearing what is not there is fine


def test_dump_load_round_trip(store: StoreBackendBase) -> None:
    store.dump_item(ID, {"a": [1, 2]}, {"time": 1.0, "duration": 0.5})
    assert store.contains_item(ID)
    assert store.load_item(ID) == {"a": [1, 2]}
    assert store.get_metadata(ID) == {"time": 1.0, "duration": 0.5}
    assert [item.call_id for item in store.get_items()] == [ID]


def test_clear_item_and_path(store: StoreBackendBase) -> None:
    store.dump_item(ID, 1, {})
    store.dump_item(OTHER, 2, {})
    store.clear_item(ID)
    assert not store.contains_item(ID) and store.contains_item(OTHER)
    store.clear_path(ID.function)
    assert not store.contains_item(OTHER)


def test_versions(store: StoreBackendBase) -> None:
    old = CallId(ID.function, "old", ID.key)
    store.dump_item(old, "old", {})
    store.dump_item(ID, "new", {})
    assert store.drop_other_versions(ID.function, keep=ID.version) == 1
    assert store.contains_item(ID) and not store.contains_item(old)


def test_function_records(store: StoreBackendBase) -> None:
    assert store.read_function_record(ID.function) is None
    store.write_function_record(ID.function, {"fingerprint": "x"})
    assert store.read_function_record(ID.function) == {"fingerprint": "x"}


def test_touch_moves_last_access(store: StoreBackendBase) -> None:
    store.dump_item(ID, 1, {})
    before = store.get_items()[0].last_access
    time.sleep(0.02)
    store.touch(ID)
    assert store.get_items()[0].last_access > before


def test_item_info_is_the_listed_entry(store: StoreBackendBase) -> None:
    assert store.item_info(ID) is None
    store.dump_item(ID, list(range(100)), {})
    [listed] = store.get_items()
    assert store.item_info(ID) == listed
    store.clear_item(ID)
    assert store.item_info(ID) is None


def test_lock_excludes_and_times_out(store: StoreBackendBase) -> None:
    with store.lock_item(ID, timeout=None) as held:
        assert held
        outcome: list[bool] = []
        waiter = threading.Thread(target=lambda: outcome.append(_try_lock(store, 0.1)))
        waiter.start()
        waiter.join()
        assert outcome == [False]
    assert _try_lock(store, 0.1)


def _try_lock(store: StoreBackendBase, timeout: float) -> bool:
    with store.lock_item(ID, timeout=timeout) as held:
        return held


def test_clear_everything(store: StoreBackendBase) -> None:
    store.dump_item(ID, 1, {})
    store.clear()
    assert not store.contains_item(ID)
    assert store.get_items() == []


def test_memory_on_a_registered_store(tmp_path: Path) -> None:
    memory = Memory(str(tmp_path), backend="dict-test", verbose=0)
    calls: list[int] = []

    @memory.cache
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert square(3) == square(3) == 9
    assert calls == [3]


def test_registering_something_that_is_not_a_store() -> None:
    with pytest.raises(ConfigurationError, match=r"subclass of forklift\.StoreBackendBase"):
        register_store_backend("bad", dict)  # type: ignore[arg-type]
    with contextlib.suppress(ConfigurationError), pytest.raises(ConfigurationError):
        register_store_backend("", DictStore)
