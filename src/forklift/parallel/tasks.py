"""The task source: pulls the user's calls lazily and checks each one is a call.

Items are ``delayed(f)(...)`` triples or hand-written ``(function, args, kwargs)``; anything
else is refused with an error naming the item and its position.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from forklift.errors import InvalidTaskError
from forklift.parallel.backends.base import Call

__all__ = ["TaskSource"]


class TaskSource:
    """Pulls items from the user's iterable on demand and checks each is a call triple."""

    def __init__(self, tasks: Iterable[Any]) -> None:
        try:
            self._iterator = iter(tasks)
        except TypeError:
            raise InvalidTaskError(
                "Parallel(...) must be called with an iterable of delayed calls, e.g. "
                f"(delayed(f)(x) for x in xs); got {type(tasks).__name__}"
            ) from None
        self.n_taken = 0
        self.exhausted = False

    def take(self, n: int) -> list[Call]:
        """Up to ``n`` more calls; fewer (maybe none) once the iterable is exhausted."""
        items = list(itertools.islice(self._iterator, n))
        if len(items) < n:
            self.exhausted = True
        first = self.n_taken
        self.n_taken += len(items)
        for position, item in enumerate(items):
            # Fast path: what delayed() makes. Anything else goes through the full check.
            if not (
                type(item) is tuple
                and len(item) == 3
                and type(item[1]) is tuple
                and type(item[2]) is dict
                and callable(item[0])
            ):
                items[position] = _as_call(item, first + position)
        return items


def _as_call(item: Any, index: int) -> Call:
    if isinstance(item, tuple | list) and len(item) == 3:
        function, args, kwargs = item
        if callable(function) and isinstance(args, tuple | list) and isinstance(kwargs, dict):
            return (function, tuple(args), kwargs)
        problem = (
            f"its function {function!r} is not callable"
            if not callable(function)
            else "its args must be a tuple and its kwargs a dict"
        )
    else:
        problem = "it is not a (function, args, kwargs) triple"
    shown = repr(item)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise InvalidTaskError(
        f"item {index} of the task iterable is {shown} ({type(item).__name__}): {problem}. "
        "Each item must be delayed(function)(*args, **kwargs) or (function, args, kwargs)."
    )
