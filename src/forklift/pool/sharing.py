"""Objects sent to each worker once per scope instead of once per task.

A function with a closure over a 100 MB array, or with large default arguments, would cost
100 MB per batch if it were pickled with every batch. Instead the caller wraps it once in a
:class:`SharingScope` (``ref = scope.share(function)``) and puts the small :class:`SharedRef`
in its tasks. Pickling a task records which refs it holds; before a worker receives a task,
the pool sends it the definitions it lacks, once; the worker keeps them until the scope ends.

Why a scope and not a cache keyed by the object: a function's closure or globals may change
between two calls (``x = 2`` after a first run); re-sending per scope (one ``Parallel`` call)
sees the change, as joblib users expect, while still sending once per call.

Imports only the standard library and cloudpickle.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Hashable
from typing import Any

import cloudpickle

__all__ = ["SharedRef", "SharingScope", "collecting_refs", "lookup_shared"]

_tokens = itertools.count(1)
_collector = threading.local()

# In a worker: token -> the shared object, filled by DEFINE messages.
WORKER_OBJECTS: dict[int, Any] = {}


def lookup_shared(token: int) -> Any:
    """Unpickling a :class:`SharedRef` in a worker gives back the object it stands for."""
    try:
        return WORKER_OBJECTS[token]
    except KeyError:
        raise LookupError(
            f"shared object {token} was not sent to this worker before a task that uses it"
        ) from None


class SharedRef:
    """A small stand-in for an object shared through a :class:`SharingScope`."""

    __slots__ = ("_scope", "token")

    def __init__(self, token: int, scope: SharingScope) -> None:
        self.token = token
        self._scope = scope

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        tokens: set[int] | None = getattr(_collector, "tokens", None)
        if tokens is not None:
            tokens.add(self.token)
        return lookup_shared, (self.token,)

    def __repr__(self) -> str:
        return f"SharedRef({self.token})"


class SharingScope:
    """Objects shared with workers for a while (typically: one ``Parallel`` call).

    Not thread-safe for ``share`` from several threads at once; one caller owns a scope.
    """

    def __init__(self) -> None:
        self._refs: dict[Hashable, tuple[Any, SharedRef]] = {}
        self._by_token: dict[int, Any] = {}
        self._payloads: dict[int, bytes] = {}
        self.closed = False

    def share(self, obj: Any, key: Hashable = None) -> SharedRef:
        """The ref standing for ``obj`` in this scope (the same ref for the same object).

        ``key`` identifies objects that are equal for this purpose without being the same
        object (e.g. ``obj.method`` makes a new bound method each time it is read); by
        default an object is identified by its ``id``.
        """
        if key is None:
            key = id(obj)
        entry = self._refs.get(key)
        if entry is not None:
            return entry[1]
        ref = SharedRef(next(_tokens), self)
        # Holding obj keeps its id (and those inside a key) from being reused meanwhile.
        self._refs[key] = (obj, ref)
        self._by_token[ref.token] = obj
        return ref

    def payload(self, token: int) -> bytes:
        """The pickled definition of ``token`` (pickled once, on first need)."""
        data = self._payloads.get(token)
        if data is None:
            data = cloudpickle.dumps(self._by_token[token], protocol=5)
            self._payloads[token] = data
        return data

    def tokens(self) -> list[int]:
        return list(self._by_token)

    def describe(self, token: int) -> str:
        obj = self._by_token.get(token)
        return str(getattr(obj, "__qualname__", None) or type(obj).__name__)


class collecting_refs:
    """While active in this thread, pickled :class:`SharedRef` objects record their tokens."""

    def __init__(self) -> None:
        self.tokens: set[int] = set()

    def __enter__(self) -> set[int]:
        self._previous = getattr(_collector, "tokens", None)
        _collector.tokens = self.tokens
        return self.tokens

    def __exit__(self, *exc_info: object) -> None:
        _collector.tokens = self._previous
