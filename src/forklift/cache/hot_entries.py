"""A memoized function's hot entries: small results kept in memory as their pickled bytes.

A result whose pickled size is at most :data:`HOT_ENTRY_BYTES` that was loaded or stored is
kept here, with the stamp of the entry on disk it came from (see
:meth:`~forklift.cache.stores.base.StoreBackendBase.entry_stamp`) and its metadata; a hit
compares the stamp with the disk's (one ``stat``) and unpickles the bytes - a fresh object
each time, as a load from disk gives. What checks the stamp and when to record an access
stays in :mod:`.memoized`; this module keeps the entries and their byte budget.

:class:`HotEntries` is an ``OrderedDict`` (oldest first) that also counts the bytes it holds
and drops the oldest beyond :data:`HOT_TOTAL_BYTES`: a hit is a plain ``dict.get`` (in C),
no method call of ours on the path every cached call takes.

Imports only the standard library.
"""

from __future__ import annotations

import collections
import dataclasses
import pickle
from typing import Any

__all__ = ["HOT_ENTRY_BYTES", "HOT_TOTAL_BYTES", "HotEntries", "HotEntry", "small_pickle"]

HOT_ENTRY_BYTES = 64 * 1024
HOT_TOTAL_BYTES = 16 * 1024 * 1024


@dataclasses.dataclass
class HotEntry:
    stamp: object
    payload: bytes
    metadata: dict[str, Any]
    touched: float = 0.0  # 0: the first hot hit records its access


class HotEntries(collections.OrderedDict[str, HotEntry]):
    """Hot entries by call key, oldest first, at most :data:`HOT_TOTAL_BYTES` of payload."""

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0

    def remember(self, key: str, entry: HotEntry) -> None:
        """Keep ``entry`` for ``key`` (in place of any older one), newest."""
        self.forget(key)
        self[key] = entry
        self.nbytes += len(entry.payload)
        while self.nbytes > HOT_TOTAL_BYTES:
            _, oldest = self.popitem(last=False)
            self.nbytes -= len(oldest.payload)

    def forget(self, key: str) -> None:
        entry = self.pop(key, None)
        if entry is not None:
            self.nbytes -= len(entry.payload)

    def clear(self) -> None:
        super().clear()
        self.nbytes = 0


def small_pickle(value: Any) -> bytes | None:
    """``value`` pickled if that takes at most :data:`HOT_ENTRY_BYTES`, else None.

    Arrays are measured before they are copied: a first pickling keeps their buffers out of
    band and only adds up their sizes (pickling a 100 MB result in band only to drop it
    cost about as much as loading it).
    """
    buffered = 0

    def measure(buffer: pickle.PickleBuffer) -> None:
        nonlocal buffered
        buffered += buffer.raw().nbytes

    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL, buffer_callback=measure)
    if len(payload) + buffered > HOT_ENTRY_BYTES:
        return None
    if buffered:  # small arrays: pickle them in band this time
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return payload
