"""Pickling in a worker for the caller: classes of ``__main__`` arrive as the caller's own.

A worker cannot import the caller's script, so cloudpickle sends a class defined there by
value. Unpickled in the caller, such a class either becomes a copy (``isinstance`` fails,
``except MyError`` misses) or - when cloudpickle recognises the class it sent earlier - is
the caller's class with its methods *overwritten* by the worker's copies, whose globals are
a detached dict (a method bumping a module-level counter then bumps a copy of it).

So what a worker sends back pickles each ``__main__`` class as a reference the caller
resolves in its own ``__main__`` (by qualified name), with the by-value copy kept only as the
fallback for a class the caller does not have there (a class made inside a function).

Measured (20,000 dataclass instances, an 8 MB array, 20,000 floats): the same time as plain
cloudpickle - the check runs only where cloudpickle already calls Python for an object.

Imports only the standard library and cloudpickle (a worker loads it).
"""

from __future__ import annotations

import io
import pickle
import sys
from collections.abc import Callable
from typing import Any

import cloudpickle

__all__ = ["MainClassPickler", "dumps"]


class MainClassPickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle's pickler, with ``__main__`` classes sent as references (see above)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type) and obj.__module__ == "__main__":
            return _main_class, (obj.__qualname__, cloudpickle.dumps(obj, protocol=5))
        return super().reducer_override(obj)


def dumps(
    obj: object, buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None
) -> bytes:
    """cloudpickle (protocol 5), except that ``__main__`` classes unpickle as the receiver's."""
    with io.BytesIO() as file:
        MainClassPickler(file, protocol=5, buffer_callback=buffer_callback).dump(obj)
        return file.getvalue()


def _main_class(qualname: str, by_value: bytes) -> type:
    """In the receiver: its own ``__main__`` class of that name, else the copy sent."""
    found: Any = sys.modules.get("__main__")
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if isinstance(found, type) and (found.__module__, found.__qualname__) == ("__main__", qualname):
        return found
    cls: type = pickle.loads(by_value)
    return cls
