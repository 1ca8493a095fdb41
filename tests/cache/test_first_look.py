"""Memory's first look at a call (``find_item``): the local store answers a miss without
raising, and a subclass of it that overrides ``load_item`` is still the one Memory hears.
Stores that do not answer ``find_item`` themselves get the default, which asks
``load_item``: the contract suite's DictStore and the object store run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forklift import Memory, register_store_backend
from forklift.cache.stores.base import CallId
from forklift.cache.stores.local import MISSES_BEFORE_ACCESS, LocalStore


class CountingLoads(LocalStore):
    """A local store that counts (and may rewrite) the loads Memory asks of it."""

    loads = 0

    def load_item(self, call_id: CallId, mmap_mode: str | None = None) -> Any:
        CountingLoads.loads += 1
        return super().load_item(call_id, mmap_mode)


class CountingLoadsOfAChild(CountingLoads):
    """One class further down: the override is inherited, not declared here."""


register_store_backend("counting-loads", CountingLoads)
register_store_backend("counting-loads-child", CountingLoadsOfAChild)


def square(x: int) -> int:
    return x * x


def test_the_local_store_finds_an_entry_or_its_absence(tmp_path: Path) -> None:
    store = LocalStore()
    store.configure(str(tmp_path))
    call_id = CallId(("module", "function"), "v1", "ab" * 16)
    assert store.find_item(call_id) == (False, None)
    with pytest.raises(KeyError):
        store.load_item(call_id)
    store.dump_item(call_id, [1, 2], {})
    assert store.find_item(call_id) == (True, [1, 2])
    assert store.load_item(call_id) == [1, 2]


def test_a_hit_after_a_run_of_misses_is_found(tmp_path: Path) -> None:
    """After misses in a row the local store looks with access() before it opens: an entry
    another process (here: another store object) wrote meanwhile is still a hit."""
    looking, writing = LocalStore(), LocalStore()
    looking.configure(str(tmp_path))
    writing.configure(str(tmp_path))
    ids = [
        CallId(("module", "function"), "v1", f"{n:02d}" * 16)
        for n in range(MISSES_BEFORE_ACCESS + 3)
    ]
    for call_id in ids[:-1]:
        assert looking.find_item(call_id) == (False, None)
    writing.dump_item(ids[-1], "stored meanwhile", {})
    assert looking.find_item(ids[-1]) == (True, "stored meanwhile")
    assert looking.find_item(ids[0]) == (False, None)


@pytest.mark.parametrize("backend", ["counting-loads", "counting-loads-child"])
def test_a_subclass_that_overrides_load_item_is_heard_by_memory(
    tmp_path: Path, backend: str
) -> None:
    CountingLoads.loads = 0
    cached = Memory(tmp_path, backend=backend, verbose=0).cache(square)
    assert cached(3) == 9  # the miss: one first look
    assert CountingLoads.loads == 1
    # A fresh Memory (no result kept hot): the hit reads the entry through load_item.
    again = Memory(tmp_path, backend=backend, verbose=0).cache(square)
    assert again(3) == 9
    assert CountingLoads.loads == 2
