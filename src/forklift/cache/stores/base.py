"""The Store protocol every cache storage implements, and the store registry.

A store keeps *entries*, each the result of one call, addressed by a :class:`CallId`: the
function's folder parts, its code version and the call key. The names follow joblib's
``StoreBackendBase`` where joblib has the same operation (``load_item``, ``dump_item``,
``contains_item``, ``clear_item``, ``clear_path``, ``get_items``, ``get_metadata``,
``configure``), so a joblib user's mental model carries over; forklift adds what its
guarantees need (per-entry locks, function records, touch-on-hit for LRU eviction).
"""

from __future__ import annotations

import abc
import dataclasses
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, NamedTuple

from forklift.errors import ConfigurationError, UnknownStoreError

__all__ = [
    "CallId",
    "ItemInfo",
    "ItemLock",
    "StoreBackendBase",
    "create_store",
    "known_store_names",
    "register_store_backend",
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
    :func:`register_store_backend` to keep cached results elsewhere.

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

    @abc.abstractmethod
    def configure(
        self, location: str, verbose: int = 0, backend_options: dict[str, Any] | None = None
    ) -> None:
        """Prepare the store at ``location``."""

    @abc.abstractmethod
    def load_item(self, call_id: CallId, mmap_mode: str | None = None) -> Any:
        """The stored value of ``call_id``."""

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


_lock = threading.Lock()
_stores: dict[str, type[StoreBackendBase]] = {}


def register_store_backend(name: str, backend_class: type[StoreBackendBase]) -> None:
    """Make ``Memory(location, backend=name)`` use ``backend_class``.

    ``backend_class`` is a subclass of :class:`StoreBackendBase`; registering a name again
    replaces the class.

    Examples:
        >>> import tempfile
        >>> from forklift import Memory, register_store_backend
        >>> from forklift.cache.stores.local import LocalStore
        >>> register_store_backend("local-copy", LocalStore)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     type(Memory(folder, backend="local-copy").store_backend).__name__
        'LocalStore'
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a store name must be a non-empty string, got {name!r}")
    if not (isinstance(backend_class, type) and issubclass(backend_class, StoreBackendBase)):
        raise ConfigurationError(
            f"store {name!r} must be a subclass of forklift.StoreBackendBase, got {backend_class!r}"
        )
    with _lock:
        _stores[name] = backend_class


def known_store_names() -> list[str]:
    with _lock:
        return sorted(_stores)


def create_store(name: str, location: str | None = None) -> StoreBackendBase:
    """A new, unconfigured store of the registered kind ``name``."""
    if name == "local" and name not in _stores:
        from forklift.cache.stores.local import LocalStore

        register_store_backend("local", LocalStore)
    with _lock:
        store_class = _stores.get(name) if isinstance(name, str) else None
    if store_class is None:
        # "Unknown location ... or backend ...": joblib's words, which users search for.
        raise UnknownStoreError(
            f"Unknown location {location} or backend {name!r}; known stores: "
            f"{', '.join(known_store_names()) or 'local'}. Use one of them, or register "
            "yours with forklift.register_store_backend(name, backend_class)."
        )
    return store_class()
