"""The Store protocol every cache storage implements.

A store keeps *entries*, each the result of one call, addressed by a :class:`CallId`: the
function's folder parts, its code version and the call key. The names follow joblib's
``StoreBackendBase`` where joblib has the same operation (``load_item``, ``dump_item``,
``contains_item``, ``clear_item``, ``clear_path``, ``get_items``, ``get_metadata``,
``configure``), so a joblib user's mental model carries over; forklift adds what its
guarantees need (per-entry locks, function records, touch-on-hit for LRU eviction).

This module imports no store: the registry of store names is :mod:`.registry`, above every
store (``base`` <- ``locks`` <- ``local`` <- ``registry``), so the imports run one way.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

__all__ = [
    "CallId",
    "ItemInfo",
    "ItemLock",
    "StoreBackendBase",
]


class CallId(NamedTuple):
    """Address of one entry: function folder parts, code version, call key."""

    function: tuple[str, ...]
    version: str
    key: str


class ItemLock(AbstractContextManager[bool]):
    """A key's lock: a context manager yielding whether it is held, plus :meth:`done`,
    called once the key's entry is stored (a store may then drop the lock's traces)."""

    def done(self) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class ItemInfo:
    """One stored entry as listed by :meth:`StoreBackendBase.get_items`."""

    call_id: CallId
    size: int
    last_access: float
    created: float


class StoreBackendBase(abc.ABC):
    """Base class of cache stores. Subclass it and register it with
    :func:`~forklift.cache.stores.registry.register_store_backend` to keep cached results
    elsewhere.

    Errors: :meth:`load_item` raises ``KeyError`` for a missing entry and
    :class:`~forklift.errors.CacheEntryDamagedError` for one that cannot be read; writes
    raise ``OSError`` when storage fails (Memory then warns and still returns the result).
    ``tests/cache/`` holds the contract suite a new store should pass.

    Examples:
        A store that extends the local one, counting the entries it writes:

        >>> import tempfile
        >>> from forklift import Memory, register_store_backend
        >>> from forklift.cache.stores.local import LocalStore
        >>> class CountingStore(LocalStore):
        ...     writes = 0
        ...     def dump_item(self, call_id, value, metadata, compress=False):
        ...         CountingStore.writes += 1
        ...         return super().dump_item(call_id, value, metadata, compress)
        >>> register_store_backend("counting", CountingStore)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     square = Memory(folder, backend="counting", verbose=0).cache(lambda x: x * x)
        ...     [square(3), square(3), square(4)], CountingStore.writes
        ([9, 9, 16], 2)
    """

    location: str = ""
    #: Whether Memory keeps a small result it has just stored in memory for the next hits,
    #: as it keeps one it has loaded: worth a few µs of each miss where reading an entry
    #: back costs a round trip; a store that reads one back cheaply turns it off.
    keep_stored_hot: bool = True

    @abc.abstractmethod
    def configure(
        self, location: str, verbose: int = 0, backend_options: dict[str, Any] | None = None
    ) -> None:
        """Prepare the store at ``location``."""

    @abc.abstractmethod
    def load_item(self, call_id: CallId, mmap_mode: str | None = None) -> Any:
        """The stored value of ``call_id``."""

    def find_item(self, call_id: CallId, mmap_mode: str | None = None) -> tuple[bool, Any]:
        """``(True, value)`` for a stored entry, ``(False, None)`` for a missing one: what
        Memory's first look at a call asks. This default asks :meth:`load_item`; a store
        whose misses are common may answer one without raising and catching ``KeyError``."""
        try:
            return True, self.load_item(call_id, mmap_mode)
        except KeyError:
            return False, None

    @abc.abstractmethod
    def dump_item(
        self, call_id: CallId, value: Any, metadata: dict[str, Any], compress: Any = False
    ) -> int:
        """Store ``value`` atomically (readers see the whole entry or none of it); return
        the bytes the entry takes."""

    @abc.abstractmethod
    def contains_item(self, call_id: CallId) -> bool: ...

    @abc.abstractmethod
    def get_metadata(self, call_id: CallId) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def clear_item(self, call_id: CallId) -> None: ...

    @abc.abstractmethod
    def clear_path(self, function: tuple[str, ...]) -> None:
        """Remove every entry of one function (all code versions)."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove everything this store holds."""

    @abc.abstractmethod
    def get_items(self) -> list[ItemInfo]: ...

    @abc.abstractmethod
    def touch(self, call_id: CallId) -> None:
        """Record an access (least-recently-used eviction reads it)."""

    @abc.abstractmethod
    def lock_item(self, call_id: CallId, timeout: float | None) -> ItemLock:
        """The right to compute ``call_id``: entering yields True once held, False on timeout.

        Must be released if the holder dies, so a crashed writer never blocks others.
        """

    @abc.abstractmethod
    def read_function_record(self, function: tuple[str, ...]) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def write_function_record(self, function: tuple[str, ...], record: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def drop_other_versions(self, function: tuple[str, ...], keep: str) -> int:
        """Delete the entries of every code version but ``keep``; return how many went."""

    def entry_stamp(self, call_id: CallId) -> object | None:
        """Something that changes whenever the entry is replaced or removed (None when it
        is missing). Memory serves small hot entries from memory while the stamp holds;
        a store that returns None (the default) simply always reads from storage."""
        return None

    def item_info(self, call_id: CallId) -> ItemInfo | None:
        """The entry of ``call_id`` as :meth:`get_items` would list it (None when missing).

        Size limits use it to check one entry's last access; this default lists the whole
        store, so a store with a cheaper way should override it.
        """
        return next((item for item in self.get_items() if item.call_id == call_id), None)

    def iter_functions(self) -> Iterator[tuple[str, ...]]:
        """Folder parts of every function with a record (used by the CLI)."""
        return iter(())
