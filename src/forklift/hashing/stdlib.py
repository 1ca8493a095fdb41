"""Records for the standard library's value types: decimals, fractions, dates, paths.

The record layouts are specified in the table of :mod:`forklift.hashing.kinds`.

Imports nothing from forklift outside :mod:`forklift.hashing`.
"""

from __future__ import annotations

import datetime as _dt
import pathlib
from decimal import Decimal
from fractions import Fraction

from forklift.hashing.encoder import Encoder, Handler, pack_i64
from forklift.hashing.kinds import int_record
from forklift.hashing.names import class_name

__all__ = ["STDLIB_HANDLERS"]


def _decimal(enc: Encoder, obj: Decimal) -> None:
    enc.out += b"D"
    enc.write_text(str(obj))


def _fraction(enc: Encoder, obj: Fraction) -> None:
    enc.out += b"Q" + int_record(obj.numerator) + int_record(obj.denominator)


def _i64s(*values: int) -> bytes:
    return b"".join(pack_i64(v) for v in values)


def _datetime(enc: Encoder, obj: _dt.datetime) -> None:
    o = obj
    enc.out += b"t" + _i64s(o.year, o.month, o.day, o.hour, o.minute, o.second)
    enc.out += _i64s(o.microsecond, o.fold)
    enc.encode(o.tzinfo)


def _date(enc: Encoder, obj: _dt.date) -> None:
    enc.out += b"d" + _i64s(obj.year, obj.month, obj.day)


def _time(enc: Encoder, obj: _dt.time) -> None:
    o = obj
    enc.out += b"h" + _i64s(o.hour, o.minute, o.second, o.microsecond, o.fold)
    enc.encode(o.tzinfo)


def _timedelta(enc: Encoder, obj: _dt.timedelta) -> None:
    enc.out += b"e" + _i64s(obj.days, obj.seconds, obj.microseconds)


def _timezone(enc: Encoder, obj: _dt.timezone) -> None:
    enc.out += b"z"
    _timedelta(enc, obj.utcoffset(None))
    enc.write_text(obj.tzname(None))


def _path(enc: Encoder, obj: pathlib.PurePath) -> None:
    enc.out += b"p"
    enc.write_text(class_name(type(obj)))  # pathlib.PurePosixPath, even where it moved
    enc.write_text(str(obj))


STDLIB_HANDLERS: dict[type, Handler] = {
    Decimal: _decimal,
    Fraction: _fraction,
    _dt.datetime: _datetime,
    _dt.date: _date,
    _dt.time: _time,
    _dt.timedelta: _timedelta,
    _dt.timezone: _timezone,
}
"""Handlers by exact type; path subclasses defined by users are found by ``objects``."""

for _cls in (
    pathlib.PurePath,
    pathlib.PurePosixPath,
    pathlib.PureWindowsPath,
    pathlib.Path,
    pathlib.PosixPath,
    pathlib.WindowsPath,
):
    STDLIB_HANDLERS[_cls] = _path
