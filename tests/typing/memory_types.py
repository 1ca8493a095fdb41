"""Checked by mypy (pyproject's ``files``), not run by pytest: ``Memory.cache(f)`` keeps
``f``'s signature and result type, for plain and coroutine functions, used bare or as a
decorator factory. A regression fails the project's mypy run."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from typing_extensions import assert_type

from forklift import Memory

memory = Memory(None)


def scale(values: list[float], factor: int = 2) -> list[float]:
    return [value * factor for value in values]


async def fetch(url: str) -> bytes:
    return url.encode()


cached = memory.cache(scale)
assert_type(cached([1.0], factor=3), list[float])
assert_type(cached.call([1.0]), tuple[list[float], dict[str, Any]])
assert_type(cached.check_call_in_cache([1.0], 2), bool)


def wrong_calls() -> None:  # type errors only: never run
    cached("not a list")  # type: ignore[arg-type]
    cached([1.0], scale=2)  # type: ignore[call-arg]
    total([1], verbose="yes")  # type: ignore[arg-type]


@memory.cache(ignore=["verbose"])
def total(values: list[int], verbose: bool = False) -> int:
    return sum(values)


assert_type(total([1, 2]), int)

cached_fetch = memory.cache(fetch)
coroutine = assert_type(cached_fetch("x"), Coroutine[Any, Any, bytes])
coroutine.close()
