"""The memoized form of a coroutine function, and :func:`memorize`, which picks the form.

As in joblib, the calls that may compute are coroutines (``await cached(...)``,
``await cached.call(...)``, ``await cached.call_and_shelve(...)``), while those that only
look (``check_call_in_cache``, ``clear``) stay plain methods. Waiting for another process's
lock on a key runs in a thread, so it never blocks the event loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from forklift.cache.memoized import MemorizedFunction, P
from forklift.cache.shelved import MemorizedResult, NotMemorizedResult
from forklift.cache.stores.base import CallId, StoreBackendBase

__all__ = ["AsyncMemorizedFunction", "memorize"]

R = TypeVar("R")


class AsyncMemorizedFunction(MemorizedFunction[P, Awaitable[Any]]):
    """The memoized form of a coroutine function: ``await cached(...)``.

    Examples:
        >>> import asyncio, tempfile
        >>> from forklift import Memory
        >>> async def fetch(x):
        ...     return x * 2
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     cached = Memory(folder, verbose=0).cache(fetch)
        ...     first = asyncio.run(cached(21))                  # computed and stored
        ...     output, metadata = asyncio.run(cached.call(21))  # computed again
        ...     first, output, cached.check_call_in_cache(21)
        (42, 42, True)
    """

    # Typed as the function's own awaitable result: ``await cached(...)`` gives its value.
    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return (await self._lookup_or_compute_async(args, kwargs))[0]

    async def call(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:  # type: ignore[override]
        """Compute (even if cached), store, and return ``(output, metadata)``."""
        call_id, arguments = self._call_id(args, kwargs)
        lock = self.store.lock_item(call_id, self.wait_timeout)
        await _in_thread(lock.__enter__)  # waiting must not block the loop
        try:
            self.store.clear_item(call_id)
            self._hot.forget(call_id.key)
            started = self._computing(arguments)
            value = await self.func(*args, **kwargs)
            metadata, stored = self._store(call_id, arguments, value, started)
            if stored:
                lock.done()
            return value, {**metadata, "stored": stored}
        finally:
            lock.__exit__(None, None, None)

    async def call_and_shelve(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> MemorizedResult | NotMemorizedResult:
        """Make sure the result is cached and return a handle to it instead of the value."""
        value, call_id = await self._lookup_or_compute_async(args, kwargs)
        if call_id is None:  # uncacheable arguments: nothing to shelve
            return NotMemorizedResult(value)
        return MemorizedResult(self.store, call_id, self.mmap_mode, self.identity.display_name)

    async def _lookup_or_compute_async(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, CallId | None]:
        call_id, arguments, found, value = self._look_up(args, kwargs)
        if call_id is None:  # arguments that cannot be hashed: computed without the cache
            return await self.func(*args, **kwargs), None
        if found:
            return value, call_id
        lock = self.store.lock_item(call_id, self.wait_timeout)
        held = await _in_thread(lock.__enter__)  # waiting must not block the loop
        try:
            found, value = self._stored_meanwhile(held, call_id, arguments)
            if found:
                return value, call_id
            started = self._computing(arguments)
            value = await self.func(*args, **kwargs)
            if self._store(call_id, arguments, value, started)[1]:
                lock.done()
            return value, call_id
        finally:
            lock.__exit__(None, None, None)


async def _in_thread(function: Callable[[], bool]) -> bool:
    # asyncio is imported by the first coroutine that waits, not with the cache: it is
    # already loaded in any process running one, and cost 15-65 ms of every other's start.
    import asyncio

    return await asyncio.to_thread(function)


def memorize(
    function: Callable[P, R], store: StoreBackendBase, **options: Any
) -> MemorizedFunction[P, R]:
    """The right memoized wrapper for ``function`` (async for coroutine functions)."""
    if inspect.iscoroutinefunction(function):
        # The result type R is the coroutine the function returns; so is this __call__'s.
        return cast("MemorizedFunction[P, R]", AsyncMemorizedFunction(function, store, **options))
    return MemorizedFunction(function, store, **options)
