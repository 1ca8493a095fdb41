"""What ``call_and_shelve`` returns, and the stand-ins used when there is no cache.

``MemorizedResult`` is a handle to a stored result (small and picklable, so it can travel to
other processes); ``NotMemorizedFunction`` / ``NotMemorizedResult`` give ``Memory(None)``
the same methods without storing anything.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

from forklift.cache.stores.base import CallId, StoreBackendBase

__all__ = [
    "AsyncNotMemorizedFunction",
    "MemorizedResult",
    "NotMemorizedFunction",
    "NotMemorizedResult",
]

P = ParamSpec("P")
R = TypeVar("R")


class MemorizedResult:
    """A result kept in the cache by ``call_and_shelve``: ``get()`` loads it, ``clear()``
    deletes it. Small and picklable, so it can be handed to other processes.

    Examples:
        >>> import tempfile
        >>> from forklift import Memory
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     square = Memory(folder, verbose=0).cache(lambda x: x * x)
        ...     shelved = square.call_and_shelve(12)   # computed and stored, not returned
        ...     value = shelved.get()
        ...     shelved.clear()
        ...     value, square.check_call_in_cache(12)
        (144, False)
    """

    def __init__(
        self,
        store: StoreBackendBase,
        call_id: CallId,
        mmap_mode: str | None = None,
        function_name: str = "",
    ) -> None:
        self.store = store
        self.call_id = call_id
        self.mmap_mode = mmap_mode
        self.function_name = function_name

    def get(self) -> Any:
        """Load the result; KeyError if it was cleared or evicted since."""
        try:
            return self.store.load_item(self.call_id, self.mmap_mode)
        except KeyError:
            raise KeyError(
                f"the shelved result of {self.function_name} is no longer in the cache at "
                f"{self.store.location} (cleared or evicted)"
            ) from None

    def clear(self) -> None:
        self.store.clear_item(self.call_id)

    def __repr__(self) -> str:
        return f"MemorizedResult({self.function_name}, key={self.call_id.key[:12]})"


class NotMemorizedResult:
    """``call_and_shelve`` without a cache: holds the value itself."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value

    def clear(self) -> None:
        self.value = None


class NotMemorizedFunction(Generic[P, R]):
    """What ``Memory(location=None).cache`` returns: the function, uncached, same methods."""

    def __init__(self, function: Callable[P, R]) -> None:
        self.func = function
        functools.update_wrapper(self, function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def call(self, *args: P.args, **kwargs: P.kwargs) -> tuple[R, dict[str, Any]]:
        return self.func(*args, **kwargs), {}

    def call_and_shelve(self, *args: P.args, **kwargs: P.kwargs) -> NotMemorizedResult:
        return NotMemorizedResult(self.func(*args, **kwargs))

    def check_call_in_cache(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        return False

    def clear(self, warn: bool = True) -> None:
        return None

    def __repr__(self) -> str:
        return f"NotMemorizedFunction({self.func!r})"


class AsyncNotMemorizedFunction(NotMemorizedFunction[P, Any]):
    """``Memory(None).cache`` of a coroutine function: the same awaitables as when cached
    (``await f.call(...)`` gives ``(output, {})``), so code runs with or without a location.

    Examples:
        >>> import asyncio
        >>> from forklift import Memory
        >>> async def fetch(x):
        ...     return x + 1
        >>> uncached = Memory(None).cache(fetch)
        >>> asyncio.run(uncached(1)), asyncio.run(uncached.call(1))
        (2, (2, {}))
    """

    async def call(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:  # type: ignore[override]
        return await self.func(*args, **kwargs), {}

    async def call_and_shelve(self, *args: Any, **kwargs: Any) -> NotMemorizedResult:  # type: ignore[override]
        return NotMemorizedResult(await self.func(*args, **kwargs))
