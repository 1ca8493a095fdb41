"""Names for messages: how a function, and a value forklift accepts, are written in them.

One home for each: the pool, the engine and the backends name a task's function the same way,
and ``Memory``, ``load`` and ``parallel_config`` accept the same memory-map modes.

Imports only the standard library.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MMAP_MODES", "callable_name"]

# The ``mmap_mode`` values of numpy.load, which dump/load, Memory and Parallel accept.
MMAP_MODES: Final = (None, "r+", "r", "w+", "c")


def callable_name(function: object) -> str:
    """A short name for a task's function: ``module.qualname``, the module left out for
    builtins and ``__main__``; the type's name for an object without a name.

    Examples:
        >>> import os
        >>> callable_name(os.path.join), callable_name(len), callable_name(3)
        ('posixpath.join', 'len', 'int')
    """
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", None)
    if name is None:
        name = type(function).__name__
    module = getattr(function, "__module__", None)
    return f"{module}.{name}" if module not in (None, "builtins", "__main__") else str(name)
