"""``Memory``: a cache folder and the functions cached in it.

``Memory(location)`` opens (or creates on first write) a store at ``location`` - a folder,
or an fsspec URL such as ``s3://bucket/prefix`` (:mod:`forklift.cache.stores.objects`);
``memory.cache(f)`` returns ``f`` memoized there. With ``bytes_limit`` / ``items_limit``
the cache keeps itself within bounds: after writes it evicts the least recently used
entries (see :func:`forklift.cache.policies.select_evictions`).

How the limits are kept cheaply (scans of the store only every so many writes) is
:mod:`forklift.cache.enforcer`'s story.
"""

from __future__ import annotations

import datetime
import inspect
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, TypeAlias, TypeVar, overload

from forklift._support.naming import MMAP_MODES
from forklift.cache.enforcer import LimitEnforcer
from forklift.cache.memoized import MemorizedFunction
from forklift.cache.memoized_async import memorize
from forklift.cache.policies import Limits, select_evictions
from forklift.cache.shelved import AsyncNotMemorizedFunction, NotMemorizedFunction
from forklift.cache.stores.base import StoreBackendBase
from forklift.cache.stores.objects import route
from forklift.cache.stores.registry import create_store
from forklift.errors import ConfigurationError

__all__ = ["Memory"]

P = ParamSpec("P")
R = TypeVar("R")
# What Memory.cache returns: a memoized function, or (no location) the function uncached.
CachedFunction: TypeAlias = "MemorizedFunction[P, R] | NotMemorizedFunction[P, R]"

_UNSET: Any = object()


class Memory:
    """A context for caching function results on disk.

    Parameters are joblib's (``location``, ``backend``, ``mmap_mode``, ``compress``,
    ``verbose``, ``backend_options``) plus forklift's ``bytes_limit`` and ``items_limit``
    (kept automatically, least recently used entries go first) and ``wait_timeout``: how
    long a call waits for another thread or process computing the same key before computing
    it itself (None: as long as that computation runs).

    Examples:
        >>> import tempfile
        >>> from forklift import Memory
        >>> folder = tempfile.TemporaryDirectory()
        >>> memory = Memory(folder.name, verbose=0)
        >>> @memory.cache
        ... def slow_sum(values, scale=1):
        ...     print("computing")
        ...     return sum(values) * scale
        >>> slow_sum([1, 2, 3])
        computing
        6
        >>> slow_sum(values=[1, 2, 3], scale=1)   # the same call: defaults filled in
        6
        >>> slow_sum.check_call_in_cache([4])
        False
        >>> output, metadata = slow_sum.call([4])     # computes even when cached, and stores
        computing
        >>> output, slow_sum.check_call_in_cache([4])
        (4, True)

        Arguments that do not change the result can be left out of the key:

        >>> @memory.cache(ignore=["verbose"])
        ... def total(values, verbose=False):
        ...     return sum(values)
        >>> total([1, 2], verbose=True), total.check_call_in_cache([1, 2], verbose=False)
        (3, True)
        >>> memory.clear(warn=False)
        >>> slow_sum.check_call_in_cache([1, 2, 3])
        False
        >>> folder.cleanup()

        ``Memory(None)`` caches nothing: the function runs every time.

        >>> Memory(None).cache(abs)(-3)
        3
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | None = None,
        backend: str = "local",
        mmap_mode: str | None = None,
        compress: bool | int | str | tuple[str, int] = False,
        verbose: int = 1,
        backend_options: dict[str, Any] | None = None,
        *,
        bytes_limit: int | str | None = None,
        items_limit: int | None = None,
        wait_timeout: float | None = 600.0,
    ) -> None:
        if mmap_mode not in MMAP_MODES:
            raise ConfigurationError(f"mmap_mode must be one of {MMAP_MODES}, got {mmap_mode!r}")
        if location is not None and not isinstance(location, str | os.PathLike):
            raise ConfigurationError(
                f"location must be a folder path or None (no caching), got {location!r}"
            )
        self.location = None if location is None else os.fspath(location)
        self.backend = backend
        self.mmap_mode = mmap_mode
        self.compress = compress
        self.verbose = verbose
        self.backend_options = dict(backend_options or {})
        self.limits = Limits(bytes_limit=bytes_limit, items_limit=items_limit)
        self.wait_timeout = wait_timeout
        self.store_backend: StoreBackendBase | None = None
        # URLs (s3://, gs://, memory://...) open the object store; file:// the local one.
        store_location, store_name = route(self.location, backend)
        if store_location is not None:
            self.store_backend = create_store(store_name, store_location)
            self.store_backend.configure(store_location, verbose, self.backend_options)
        self._enforcer = (
            None
            if self.store_backend is None or not self.limits.any
            else LimitEnforcer(self.store_backend, self.limits)
        )

    @overload
    def cache(
        self,
        func: Callable[P, R],
        ignore: Iterable[str] | None = None,
        verbose: int | None = None,
        mmap_mode: str | bool | None = False,
        cache_validation_callback: Callable[[dict[str, Any]], bool] | None = None,
        *,
        version: str | None = None,
        input_files: Iterable[str] | Mapping[str, str] | None = None,
    ) -> CachedFunction[P, R]: ...

    @overload
    def cache(
        self,
        func: None = None,
        ignore: Iterable[str] | None = None,
        verbose: int | None = None,
        mmap_mode: str | bool | None = False,
        cache_validation_callback: Callable[[dict[str, Any]], bool] | None = None,
        *,
        version: str | None = None,
        input_files: Iterable[str] | Mapping[str, str] | None = None,
    ) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...

    def cache(
        self,
        func: Callable[..., Any] | None = None,
        ignore: Iterable[str] | None = None,
        verbose: int | None = None,
        mmap_mode: str | bool | None = False,
        cache_validation_callback: Callable[[dict[str, Any]], bool] | None = None,
        *,
        version: str | None = None,
        input_files: Iterable[str] | Mapping[str, str] | None = None,
    ) -> Any:
        """Memoize ``func``; usable as ``@memory.cache`` or ``@memory.cache(ignore=[...])``.

        forklift adds ``version`` (pin the code version: entries stay valid until it
        changes, whatever the code does) and ``input_files`` (names of arguments that are
        paths whose content - or ``{"name": "mtime"}``: size and modification time - is part
        of the key).
        """
        if func is None:
            # Positionally, in the signature's order (the list is written out in the
            # overloads above already).
            return lambda function: self.cache(
                function,
                ignore,
                verbose,
                mmap_mode,
                cache_validation_callback,
                version=version,
                input_files=input_files,
            )
        if isinstance(func, MemorizedFunction | NotMemorizedFunction):
            func = func.func
        if not callable(func):
            raise ConfigurationError(f"Memory.cache needs a function, got {func!r}")
        if ignore is not None and isinstance(ignore, str):
            raise ConfigurationError(f"ignore must be a list of argument names, got {ignore!r}")
        if cache_validation_callback is not None and not callable(cache_validation_callback):
            raise ConfigurationError(
                f"cache_validation_callback must be callable, got {cache_validation_callback!r}"
            )
        if self.store_backend is None:
            if inspect.iscoroutinefunction(func):
                return AsyncNotMemorizedFunction(func)
            return NotMemorizedFunction(func)
        if mmap_mode is False:
            mmap_mode = self.mmap_mode
        if mmap_mode not in MMAP_MODES:
            raise ConfigurationError(f"mmap_mode must be one of {MMAP_MODES}, got {mmap_mode!r}")
        return memorize(
            func,
            self.store_backend,
            ignore=ignore or (),
            mmap_mode=mmap_mode,
            compress=self.compress,
            verbose=self.verbose if verbose is None else verbose,
            cache_validation_callback=cache_validation_callback,
            version=version,
            input_files=input_files,
            wait_timeout=self.wait_timeout,
            after_store=None if self._enforcer is None else self._enforcer.after_store,
        )

    def clear(self, warn: bool = True) -> None:
        """Delete everything in this cache."""
        if self.store_backend is not None:
            self.store_backend.clear()

    def reduce_size(
        self,
        bytes_limit: int | str | None = None,
        items_limit: int | None = None,
        age_limit: datetime.timedelta | float | None = None,
    ) -> int:
        """Evict least recently used entries until the cache is within the limits given
        (or, when none is given, the ones it was created with); return how many went."""
        limits = Limits(bytes_limit, items_limit, age_limit)
        if not limits.any:
            limits = self.limits
        return self._evict(limits)

    def _evict(self, limits: Limits) -> int:
        store = self.store_backend
        if store is None or not limits.any:
            return 0
        doomed = select_evictions(store.get_items(), limits, time.time())
        for item in doomed:
            store.clear_item(item.call_id)
        return len(doomed)

    def eval(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``memory.cache(func)(*args, **kwargs)``; a plain call without a location."""
        if self.store_backend is None:
            return func(*args, **kwargs)
        return self.cache(func)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Memory(location={self.location!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_memory,
            (
                self.location,
                self.backend,
                self.mmap_mode,
                self.compress,
                self.verbose,
                self.backend_options,
                self.limits.bytes_limit,
                self.limits.items_limit,
                self.wait_timeout,
            ),
        )


def _rebuild_memory(
    location: str | None,
    backend: str,
    mmap_mode: str | None,
    compress: Any,
    verbose: int,
    backend_options: dict[str, Any],
    bytes_limit: int | None,
    items_limit: int | None,
    wait_timeout: float | None,
) -> Memory:
    return Memory(
        location,
        backend,
        mmap_mode,
        compress,
        verbose,
        backend_options,
        bytes_limit=bytes_limit,
        items_limit=items_limit,
        wait_timeout=wait_timeout,
    )
