"""Builders for the builtin and standard-library names of ``SAFE_GLOBALS``.

Each builder accepts exactly the argument shapes that pickle writes for its type (and that
Python 2 / older protocols wrote), checks their types, and constructs the value itself.
What a builder must never do, and why:

* take a count where pickle writes data (``bytes(10**12)``, ``list(range(10**10))``):
  an allocation the file does not pay for;
* copy without paying: ``list(x)``, ``bytes(x)``, ``dict(x)``... charge what they copy to
  the decoder's budget, so one memo entry referenced a million times cannot be copied a
  million times;
* parse what costs more than it reads: ``Fraction("1e999999999")`` computes a power of ten,
  so only the ``n/d`` form that ``str(Fraction)`` writes is accepted.

Imports only :mod:`forklift.errors`.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import re
from collections.abc import Callable
from typing import Any

from forklift.persist.decoding.machine import Decoder, Rule
from forklift.persist.decoding.rules import Builder
from forklift.persist.decoding.structure import check_key

__all__ = ["BUILTIN_RULES"]

_NUMBER = (int, float)
_SEQUENCES = (list, tuple, set, frozenset, str, bytes, bytearray, dict, collections.deque)
_LATIN1 = ("latin1", "latin-1")  # the only encoding pickle names (protocols 0-2 bytes)
_FRACTION = re.compile(r"\s*[-+]?\d{1,4300}(/\d{1,4300})?\s*")


def _refuse(d: Decoder, name: str, args: tuple[Any, ...]) -> Any:
    kinds = ", ".join(type(arg).__name__ for arg in args) or "no arguments"
    raise d.corrupt(f"{name} called with ({kinds}), which no pickle writer produces")


def _simple(
    name: str, make: Callable[..., Any], accepts: Callable[[tuple[Any, ...]], bool]
) -> Builder:
    def build(d: Decoder, args: tuple[Any, ...]) -> Any:
        if not accepts(args):
            return _refuse(d, name, args)
        return make(*args)

    return Builder(build)


def _copying(name: str, make: Callable[[Any], Any], *, keys: bool = False) -> Builder:
    """``make()`` or ``make(container)`` for a finite, already decoded container."""

    def build(d: Decoder, args: tuple[Any, ...]) -> Any:
        if not args:
            return make(())
        if len(args) != 1 or not isinstance(args[0], _SEQUENCES):
            return _refuse(d, name, args)
        d.charge(len(args[0]))
        if keys:
            for item in args[0]:
                check_key(d, item)
        return make(args[0])

    return Builder(build)


def _bytes_like(name: str, make: Callable[..., Any]) -> Builder:
    def build(d: Decoder, args: tuple[Any, ...]) -> Any:
        if not args:
            return make()
        first = args[0]
        if len(args) == 1 and isinstance(first, bytes | bytearray | list | tuple):
            d.charge(len(first))
            return make(first)
        if len(args) == 2 and isinstance(first, str) and args[1] in _LATIN1:
            d.charge(len(first))
            return make(first, args[1])  # protocol 2: (latin-1 text, "latin-1")
        return _refuse(d, name, args)

    return Builder(build)


def _mapping(name: str, make: Callable[..., Any]) -> Builder:
    def build(d: Decoder, args: tuple[Any, ...]) -> Any:
        if not args:
            return make()
        if len(args) != 1 or not isinstance(args[0], dict | list | tuple):
            return _refuse(d, name, args)
        d.charge(len(args[0]))
        pairs = args[0].items() if isinstance(args[0], dict) else args[0]
        result = make()
        for pair in pairs:
            key, value = pair
            result[check_key(d, key)] = value
        return result

    return Builder(build)


def _encode(d: Decoder, args: tuple[Any, ...]) -> Any:
    # how protocols 0-2 spell bytes: _codecs.encode(latin-1 text, "latin1")
    if len(args) == 2 and isinstance(args[0], str) and args[1] in _LATIN1:
        d.charge(len(args[0]))
        return args[0].encode("latin-1")
    return _refuse(d, "_codecs.encode", args)


def _deque(d: Decoder, args: tuple[Any, ...]) -> Any:
    if len(args) > 2 or (len(args) == 2 and not isinstance(args[1], int | type(None))):
        return _refuse(d, "collections.deque", args)
    items = args[0] if args else ()
    if not isinstance(items, _SEQUENCES):
        return _refuse(d, "collections.deque", args)
    d.charge(len(items))
    return collections.deque(items, *args[1:])


def _fraction(d: Decoder, args: tuple[Any, ...]) -> Any:
    if (len(args) == 1 and isinstance(args[0], str) and _FRACTION.fullmatch(args[0])) or (
        1 <= len(args) <= 2 and all(type(arg) is int for arg in args)
    ):
        return fractions.Fraction(*args)
    return _refuse(d, "fractions.Fraction", args)


def _ints_or_none(args: tuple[Any, ...], most: int) -> bool:
    return 1 <= len(args) <= most and all(
        arg is None or (isinstance(arg, int) and not isinstance(arg, bool)) for arg in args
    )


def _datetime_args(args: tuple[Any, ...]) -> bool:
    allowed = (bytes, str, int, float, datetime.tzinfo, datetime.timedelta, type(None))
    return len(args) <= 8 and all(isinstance(arg, allowed) for arg in args)


def _numbers(most: int, *extra: type) -> Callable[[tuple[Any, ...]], bool]:
    return lambda args: len(args) <= most and all(isinstance(a, _NUMBER + extra) for a in args)


BUILTIN_RULES: dict[str, Rule] = {
    "builtins.bool": _simple("bool", bool, _numbers(1)),
    "builtins.int": _simple(
        "int",
        int,
        lambda args: (
            (len(args) <= 1 and all(isinstance(a, (*_NUMBER, str)) for a in args))
            or (len(args) == 2 and isinstance(args[0], str) and type(args[1]) is int)
        ),
    ),
    "builtins.float": _simple("float", float, _numbers(1, str)),
    "builtins.complex": _simple(
        "complex", complex, lambda args: _numbers(2)(args) or _numbers(1, str)(args)
    ),
    # no encoding argument: a codec name would make Python import encodings.<name>
    "builtins.str": _simple(
        "str", str, lambda args: len(args) <= 1 and all(isinstance(a, str) for a in args)
    ),
    "builtins.bytes": _bytes_like("bytes", bytes),
    "builtins.bytearray": _bytes_like("bytearray", bytearray),
    "builtins.list": _copying("list", list),
    "builtins.tuple": _copying("tuple", tuple),
    "builtins.set": _copying("set", set, keys=True),
    "builtins.frozenset": _copying("frozenset", frozenset, keys=True),
    "builtins.dict": _mapping("dict", dict),
    "builtins.range": _simple("range", range, lambda args: _ints_or_none(args, 3)),
    "builtins.slice": _simple("slice", slice, lambda args: _ints_or_none(args, 3)),
    "_codecs.encode": Builder(_encode),
    "collections.OrderedDict": _mapping("OrderedDict", collections.OrderedDict),
    "collections.Counter": _mapping("Counter", collections.Counter),
    "collections.deque": Builder(_deque),
    "decimal.Decimal": _simple(
        "Decimal", decimal.Decimal, lambda args: len(args) == 1 and isinstance(args[0], str | int)
    ),
    "fractions.Fraction": Builder(_fraction),
    **{
        f"datetime.{kind.__name__}": _simple(kind.__name__, kind, _datetime_args)
        for kind in (
            datetime.date,
            datetime.datetime,
            datetime.time,
            datetime.timedelta,
            datetime.timezone,
        )
    },
}
