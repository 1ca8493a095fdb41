"""Stable names for classes and functions: the public module a name is reachable from.

Records name a class or function by module and qualified name, as pickle does. But the
module in ``__module__`` is often private and moves between versions (``pathlib.Path`` lives
in ``pathlib._local`` from Python 3.13 on, ``pandas.DataFrame`` in ``pandas.core.frame``).
So the name written is the *shortest* dotted prefix of ``__module__`` from which walking the
qualified name finds the very same object: ``pathlib.Path``, ``pandas.DataFrame``.

Imports nothing from forklift.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

__all__ = ["class_name", "public_module"]


def public_module(module: str | None, qualname: str, obj: object) -> str | None:
    """The shortest prefix of ``module`` whose ``qualname`` attribute path is ``obj``.

    None when no prefix leads to ``obj`` (a lambda, a nested or replaced function, a class
    built at run time): then the name alone does not identify the object.
    """
    if not module:
        return None
    parts = module.split(".")
    for end in range(1, len(parts) + 1):
        candidate = ".".join(parts[:end])
        if _walk(sys.modules.get(candidate), qualname) is obj:
            return candidate
    return None


def _walk(found: Any, qualname: str) -> Any:
    try:
        for part in qualname.split("."):
            if found is None:
                return None
            found = getattr(found, part, None)
    except Exception:  # a module-level __getattr__ may raise anything
        return None
    return found


def _class_name(cls: Any) -> str:
    module = public_module(cls.__module__, cls.__qualname__, cls) or cls.__module__
    return f"{module}.{cls.__qualname__}"


# Instances of one class are often hashed by the thousand; their class's name is computed once.
_cached_class_name = functools.lru_cache(maxsize=4096)(_class_name)


def class_name(cls: type) -> str:
    """``module.QualifiedName`` of a class as written into records (public module if any)."""
    try:
        return _cached_class_name(cls)
    except TypeError:  # a metaclass that made its classes unhashable
        return _class_name(cls)
