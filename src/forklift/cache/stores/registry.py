"""Store names: the built-in stores (local, objects), the ones users register, lookup by name.

``Memory(location, backend=name)`` asks :func:`create_store` for a new store of kind
``name``. This module sits above every store it names (``base`` <- ``locks`` <- ``local`` <-
``registry``), as :mod:`forklift.parallel.backends.registry` sits above the backends, so
the built-in stores are registered at import time and no store module imports the registry:
the base class used to hold the registry and import the local store inside a function, the
cycle base -> local -> base that this module breaks. An import-linter contract keeps it
broken.

Rejected: entry points for third-party stores (``register_store_backend`` is joblib's way
and enough); a lazy factory per built-in name (both stores' modules are loaded whenever a
``Memory`` exists: ``memory.py`` routes URLs with :func:`~.objects.route`, and the object
store imports fsspec only when it opens a location).
"""

from __future__ import annotations

import threading

from forklift.cache.stores.base import StoreBackendBase
from forklift.cache.stores.local import LocalStore
from forklift.cache.stores.objects import OBJECT_STORE, ObjectStore
from forklift.errors import ConfigurationError, UnknownStoreError

__all__ = ["create_store", "known_store_names", "register_store_backend"]

_lock = threading.Lock()
_stores: dict[str, type[StoreBackendBase]] = {"local": LocalStore, OBJECT_STORE: ObjectStore}


def register_store_backend(name: str, backend_class: type[StoreBackendBase]) -> None:
    """Make ``Memory(location, backend=name)`` use ``backend_class``.

    ``backend_class`` is a subclass of :class:`~forklift.cache.stores.base.StoreBackendBase`;
    registering a name again replaces the class.

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
    with _lock:
        store_class = _stores.get(name) if isinstance(name, str) else None
    if store_class is None:
        # "Unknown location ... or backend ...": joblib's words, which users search for.
        raise UnknownStoreError(
            f"Unknown location {location} or backend {name!r}; known stores: "
            f"{', '.join(known_store_names())}. Use one of them, or register "
            "yours with forklift.register_store_backend(name, backend_class)."
        )
    return store_class()
