"""HotEntries: the byte budget of a memoized function's in-memory results."""

from __future__ import annotations

import numpy as np

from forklift.cache.hot_entries import (
    HOT_ENTRY_BYTES,
    HOT_TOTAL_BYTES,
    HotEntries,
    HotEntry,
    small_pickle,
)


def test_the_oldest_entries_go_once_the_budget_is_spent() -> None:
    hot = HotEntries()
    size = HOT_TOTAL_BYTES // 4
    for key in "abcd":
        hot.remember(key, HotEntry(stamp=key, payload=bytes(size), metadata={}))
    assert list(hot) == ["a", "b", "c", "d"] and hot.nbytes == HOT_TOTAL_BYTES
    hot.remember("a", HotEntry(stamp="a2", payload=bytes(size), metadata={}))  # replaced: newest
    assert list(hot) == ["b", "c", "d", "a"] and hot.nbytes == HOT_TOTAL_BYTES
    hot.remember("e", HotEntry(stamp="e", payload=bytes(10), metadata={}))
    assert list(hot) == ["c", "d", "a", "e"] and hot.nbytes == 3 * size + 10
    hot.forget("d")
    hot.forget("missing")
    assert list(hot) == ["c", "a", "e"] and hot.nbytes == 2 * size + 10
    hot.clear()
    assert not hot and hot.nbytes == 0


def test_only_small_results_are_pickled_for_keeping() -> None:
    assert small_pickle(np.zeros(HOT_ENTRY_BYTES // 16)) is not None
    assert small_pickle(np.zeros(HOT_ENTRY_BYTES)) is None  # measured, not copied
    assert small_pickle(bytes(HOT_ENTRY_BYTES + 1)) is None
