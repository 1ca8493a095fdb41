"""Signature defaults that can be told apart from the same value passed explicitly.

``Parallel(verbose=0)`` and ``Parallel()`` must differ: the first overrides an enclosing
``parallel_config(verbose=5)``, the second inherits it. A default made by :func:`default`
reads, compares and prints like the value itself, but :func:`is_default` recognises it.
:data:`INHERIT_NONE` is the same idea for ``None`` (``parallel_config(n_jobs=...)``: left out
inherits, an explicit ``None`` resets), and :data:`RESET` asks the precedence function to set
a parameter back to ``None``.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

__all__ = ["INHERIT_NONE", "RESET", "default", "is_default", "is_default_marker"]


class _DefaultInt(int):
    """An ``int`` default value that was not passed by the caller."""

    __slots__ = ()


class _DefaultStr(str):
    """A ``str`` default value that was not passed by the caller."""

    __slots__ = ()


class _DefaultNone:
    """The default of ``parallel_config(n_jobs=...)``: "inherit", told apart from an
    explicit ``None``, which resets ``n_jobs`` to the backend's default as in joblib."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "default(None)"


class _Reset:
    """Passed to :func:`resolve_settings`: set this parameter back to ``None``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "RESET"


INHERIT_NONE: Final[Any] = _DefaultNone()
RESET: Final[Any] = _Reset()

_T = TypeVar("_T", int, str)


def default(value: _T) -> _T:
    """Mark ``value`` as a signature default, so explicit arguments can be told apart.

    >>> from forklift.config import default, is_default
    >>> v = default(0)
    >>> v == 0, is_default(v), is_default(0)
    (True, True, False)
    """
    if isinstance(value, str):
        return _DefaultStr(value)
    return _DefaultInt(value)


def is_default(value: object) -> bool:
    """True for ``None`` and for values made by :func:`default`: "not set by the caller"."""
    return value is None or type(value) in (_DefaultInt, _DefaultStr)


def is_default_marker(value: object) -> bool:
    """True for a value that stands for "not passed" (``None`` aside, which depends on the
    parameter): one made by :func:`default`, or :data:`INHERIT_NONE`."""
    return value is INHERIT_NONE or type(value) in (_DefaultInt, _DefaultStr)
