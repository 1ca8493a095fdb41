"""Bounded caches: automatic size and count limits, LRU order, reduce_size, the shard layout."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from forklift import Memory
from forklift.cache.policies import Limits, select_evictions
from forklift.cache.stores.base import CallId, ItemInfo
from forklift.cache.stores.local import LocalStore


def store_of(memory: Memory) -> LocalStore:
    store = memory.store_backend
    assert isinstance(store, LocalStore)
    return store


def total_bytes(memory: Memory) -> int:
    return sum(item.size for item in store_of(memory).get_items())


def test_bytes_limit_is_kept_automatically(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0, bytes_limit="1M")
    make = memory.cache(lambda i: np.full(12_500, i, dtype=np.float64))  # ~100 kB each
    for i in range(40):
        make(i)
        assert total_bytes(memory) <= 1024**2
    assert len(store_of(memory).get_items()) >= 5


def test_items_limit_is_kept_automatically(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0, items_limit=10)
    square = memory.cache(lambda i: i * i)
    for i in range(50):
        square(i)
        assert len(store_of(memory).get_items()) <= 10


def test_least_recently_used_entries_go_first(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0, items_limit=5)
    calls: list[int] = []

    def square(i: int) -> int:
        calls.append(i)
        return i * i

    cached = memory.cache(square)
    for i in range(5):
        cached(i)
        time.sleep(0.01)
    cached(0)  # touch the oldest: it becomes the most recently used
    time.sleep(0.01)
    cached(5)  # over the limit: evict down to it (5 entries), the oldest first
    assert cached.check_call_in_cache(0)
    assert cached.check_call_in_cache(5)
    assert not cached.check_call_in_cache(1)


def test_items_limit_evicts_down_to_the_limit_not_below(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0, items_limit=3)
    square = memory.cache(lambda i: i * i)
    for i in range(10):
        square(i)
        assert len(store_of(memory).get_items()) == min(i + 1, 3)
    assert [square.check_call_in_cache(i) for i in range(10)] == [False] * 7 + [True] * 3


def test_bytes_limit_evicts_down_to_the_limit_not_below(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0, bytes_limit="1M")
    make = memory.cache(lambda i: np.full(12_500, i, dtype=np.float64))  # ~100 kB each
    make(0)
    entry_size = total_bytes(memory)
    for i in range(1, 30):
        make(i)
        total = total_bytes(memory)
        assert total <= 1024**2, (i, total)
        if i >= 1024**2 // entry_size:  # full: one more entry would not have fitted
            assert total + entry_size > 1024**2, (i, total)


def test_an_entry_used_since_the_last_scan_is_not_evicted(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0, items_limit=3)
    square = memory.cache(lambda i: i * i)
    for i in range(5):  # the 5th write scans the folder and evicts down to 2, 3, 4
        square(i)
        time.sleep(0.02)
    assert [square.check_call_in_cache(i) for i in range(5)] == [False, False, True, True, True]
    # Another Memory on the folder (as another process would) uses entry 2, the oldest.
    other = Memory(tmp_path, verbose=0).cache(square.func)
    assert other(2) == 4
    time.sleep(0.02)
    square(5)  # over the limit: the least recently used is now 3, not 2
    assert [square.check_call_in_cache(i) for i in range(2, 6)] == [True, False, True, True]


def test_reduce_size_by_hand(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0)
    square = memory.cache(lambda i: i * i)
    for i in range(20):
        square(i)
    assert memory.reduce_size(items_limit=5) == 15
    assert len(store_of(memory).get_items()) == 5
    old = store_of(memory).get_items()[0]
    entry = store_of(memory).entry_path(old.call_id)
    os.utime(entry, (time.time() - 7200, time.time() - 7200))
    import datetime

    assert memory.reduce_size(age_limit=datetime.timedelta(hours=1)) == 1
    assert memory.reduce_size(bytes_limit=0) == 4
    assert memory.reduce_size() == 0  # no limits given or configured: nothing to do


def test_entries_are_sharded(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0)
    square = memory.cache(lambda i: i * i)
    for i in range(64):
        square(i)
    store = store_of(memory)
    items = store.get_items()
    shards = {store.entry_dir(item.call_id).parent.name for item in items}
    assert len(shards) > 10  # 64 keys spread over 16 one-hex-digit shards
    assert all(len(shard) == 1 for shard in shards)


def info(name: str, size: int, last_access: float) -> ItemInfo:
    return ItemInfo(CallId(("f",), "v", name), size, last_access, last_access)


def test_select_evictions_is_lru_within_both_limits() -> None:
    items = [info("a", 100, 1.0), info("b", 100, 3.0), info("c", 100, 2.0)]
    assert [i.call_id.key for i in select_evictions(items, Limits(bytes_limit=200), 10)] == ["a"]
    assert [i.call_id.key for i in select_evictions(items, Limits(items_limit=1), 10)] == ["a", "c"]
    assert select_evictions(items, Limits(bytes_limit=1000, items_limit=10), 10) == []
    aged = select_evictions(items, Limits(age_limit=7.5), 10)
    assert [i.call_id.key for i in aged] == ["a", "c"]


def test_bad_limits() -> None:
    with pytest.raises(ValueError, match="items_limit"):
        Limits(items_limit=-1)
    with pytest.raises(ValueError, match="age_limit"):
        Limits(age_limit="old")  # type: ignore[arg-type]
