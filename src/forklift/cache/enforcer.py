"""Keeping a cache within ``bytes_limit`` / ``items_limit`` as it is written, cheaply.

After each write the cache is brought back down to its limits exactly - never below them, so
a full cache keeps all the entries it may hold - least recently used entries first. What
costs is knowing the cache: listing it takes one ``stat`` per entry. So a process lists the
store (a *scan*) only after its first write and then every :data:`SCAN_EVERY` writes; in
between it keeps count of what it wrote and, when that crosses a limit, evicts from the
*candidates* - the entries the last scan found, oldest first. A candidate is checked with
one look before it goes: if it was used since the scan (by this process or another), it is
no longer among the oldest and is passed over; if it is gone already, it no longer counts.
When the candidates run out, a scan starts afresh.

(Rejected: scanning at every write that crosses a limit - exact, but each write of a full
cache of 100,000 entries would cost 100,000 ``stat`` calls; evicting to 90% of the limits so
scans are rarer - the cache then never holds what it was allowed to hold.)

Writes of other processes are seen at the next scan: between scans the cache may exceed its
limits by what they wrote.
"""

from __future__ import annotations

import collections
import threading
import time

from forklift.cache.policies import Limits, select_evictions
from forklift.cache.stores.base import ItemInfo, StoreBackendBase

__all__ = ["SCAN_EVERY", "LimitEnforcer"]

SCAN_EVERY = 64


class LimitEnforcer:
    """Brings ``store`` back within ``limits`` after each write (see the module docstring)."""

    def __init__(self, store: StoreBackendBase, limits: Limits) -> None:
        self._store = store
        self._limits = Limits(limits.bytes_limit, limits.items_limit)  # age is for reduce_size
        # One eviction at a time per process: two threads evicting from one candidate list
        # would count the same entry twice.
        self._lock = threading.Lock()
        self._scanned = False
        self._writes_since_scan = 0
        self._items = 0  # what the cache holds, as far as this process knows
        self._bytes = 0
        self._candidates: collections.deque[ItemInfo] = collections.deque()

    def after_store(self, size: int) -> None:
        """Account for a write of ``size`` bytes and evict what no longer fits."""
        with self._lock:
            self._writes_since_scan += 1
            self._items += 1
            self._bytes += size
            if not self._scanned or self._writes_since_scan >= SCAN_EVERY:
                self._scan()
            elif not self._within():
                self._evict_candidates()

    def _within(self) -> bool:
        limits = self._limits
        return (limits.bytes_limit is None or self._bytes <= limits.bytes_limit) and (
            limits.items_limit is None or self._items <= limits.items_limit
        )

    def _scan(self) -> None:
        items = self._store.get_items()
        doomed = select_evictions(items, self._limits, time.time())
        for item in doomed:
            self._store.clear_item(item.call_id)
        gone = {item.call_id for item in doomed}
        kept = sorted(
            (item for item in items if item.call_id not in gone), key=lambda i: i.last_access
        )
        self._candidates = collections.deque(kept)
        self._items = len(kept)
        self._bytes = sum(item.size for item in kept)
        self._writes_since_scan = 0
        self._scanned = True

    def _evict_candidates(self) -> None:
        while not self._within():
            if not self._candidates:
                self._scan()
                return
            candidate = self._candidates.popleft()
            now = self._store.item_info(candidate.call_id)
            if now is not None and now.last_access != candidate.last_access:
                continue  # used since the scan: no longer among the least recently used
            if now is not None:
                self._store.clear_item(candidate.call_id)
            self._items -= 1
            self._bytes -= candidate.size
