"""The encoding's specification (every record tag), and the records of the built-in types.

Every record starts with a one-byte tag; the table below is the encoding's specification
(version :data:`~forklift.hashing.encoder.ENCODING_VERSION`). ``u64``/``i64``/``f64`` are
8-byte little-endian; ``text`` is a u64 byte length then UTF-8 (lone surrogates kept);
``rec`` is a nested record; ``digests`` are sorted sub-digests of the entries.

====  ===========================  =====================================================
tag   type                         body
====  ===========================  =====================================================
N     None                         (none)
T F   True, False                  (none)
i     int in the i64 range         i64
I     any other int                u64 length, little-endian two's complement
f     float                        f64; every NaN is written as the one quiet NaN
c     complex                      f64 real, f64 imaginary (NaN as for float)
s     str                          text
b B   bytes, bytearray             u64 length, bytes
m     memoryview                   text format, rec shape, bytes in C order
( [   tuple, list                  u64 count, rec per item
{     dict                         u64 count, digests of (rec key, rec value)
o     collections.OrderedDict      u64 count, (rec key, rec value) per entry, in order
S Z   set, frozenset               u64 count, digests of rec item
r     range                        rec start, rec stop, rec step
l     slice                        rec start, rec stop, rec step
D     decimal.Decimal              text of str(value) (keeps precision: 1.0 != 1.00)
Q     fractions.Fraction           rec numerator, rec denominator
t     datetime.datetime            i64 y, mo, d, h, mi, s, us, fold, rec tzinfo
d     datetime.date                i64 y, mo, d
h     datetime.time                i64 h, mi, s, us, fold, rec tzinfo
e     datetime.timedelta           i64 days, seconds, microseconds
z     datetime.timezone            rec offset, text name
p     pathlib.PurePath             text class, text str(path)
E     enum member                  text class, rec name (value for Flag)
C     dataclass instance           text class, u64 count, (text name, rec value) per field
n     tuple subclass (namedtuple)  text class, rec tuple(fields or ()), rec tuple(items),
                                   rec __dict__ or None
P     function, builtin, global    text module, text qualified name (when that name leads
                                   back to the object; module: see hashing.names)
L     other function (lambda...)   text module, text qualified name, rec code, rec defaults,
                                   rec kwdefaults, u64 count, rec per closure cell (``_``
                                   for an empty cell)
k     code object                  u64 argcount, posonly, kwonly, rec co_code, rec
                                   co_consts, rec co_names, rec co_varnames
M     bound method                 rec self, rec function
K     class                        text module, text qualified name
O     module                       text name
R     anything else                rec callable, args, state, listitems, dictitems, setter
                                   from the copyreg reducer or ``obj.__reduce_ex__(4)``
                                   (pickle protocol pinned); a reducer's str result is a P
^     back-reference (cycle)       u64 levels up the path
A g   numpy ndarray, scalar        see :mod:`forklift.hashing.arrays`
y     numpy dtype                  see :mod:`forklift.hashing.arrays`
X     pandas object                see :mod:`forklift.hashing.frames`
====  ===========================  =====================================================

This module holds the built-in value types; :mod:`~forklift.hashing.stdlib` the standard
library's value types, :mod:`~forklift.hashing.functions` functions, classes' methods and
modules, :mod:`~forklift.hashing.objects` the rest.

Imports nothing from forklift outside :mod:`forklift.hashing`.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from math import isnan
from typing import Any

from forklift.hashing.encoder import Encoder, Handler, pack_f64, pack_i64, pack_u64

__all__ = ["BUILTIN_HANDLERS", "RECORDS", "int_record"]

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
# The one NaN every float NaN is written as (quiet NaN, sign bit clear), spelled out so it
# cannot depend on how the platform builds float("nan").
_NAN = bytes.fromhex("000000000000f87f")
# Strings and bytes up to this size are appended in one operation (faster for small ones).
_SMALL = 4096


# Records of scalars, returned as bytes so containers can append them without a call through
# the encoder (most of the time spent on small objects is call overhead). None means "too
# large to build in memory: use the streaming handler".
Record = Callable[[Any], "bytes | None"]


def _none_record(obj: None) -> bytes:
    return b"N"


def _bool_record(obj: bool) -> bytes:
    return b"T" if obj else b"F"


def int_record(obj: int) -> bytes:
    if _I64_MIN <= obj <= _I64_MAX:
        return b"i" + pack_i64(obj)
    data = obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True)
    return b"I" + pack_u64(len(data)) + data


def _f64(value: float) -> bytes:
    return _NAN if isnan(value) else pack_f64(value)


def _float_record(obj: float) -> bytes:
    return b"f" + (_NAN if isnan(obj) else pack_f64(obj))


def _complex_record(obj: complex) -> bytes:
    return b"c" + _f64(obj.real) + _f64(obj.imag)


def _str_record(obj: str) -> bytes | None:
    if len(obj) > _SMALL:
        return None
    data = obj.encode("utf-8", "surrogatepass")
    return b"s" + pack_u64(len(data)) + data


def _str(enc: Encoder, obj: str) -> None:
    data = obj.encode("utf-8", "surrogatepass")
    enc.out += b"s" + pack_u64(len(data))
    enc.feed(data)


def _bytes_record(tag: bytes) -> Record:
    def record(obj: bytes | bytearray) -> bytes | None:
        if len(obj) > _SMALL:
            return None
        return tag + pack_u64(len(obj)) + obj

    return record


def _bytes_like(tag: bytes) -> Handler:
    def encode(enc: Encoder, obj: bytes | bytearray) -> None:
        enc.out += tag + pack_u64(len(obj))
        enc.feed(obj)

    return encode


RECORDS: dict[type, Record] = {
    type(None): _none_record,
    bool: _bool_record,
    int: int_record,
    float: _float_record,
    complex: _complex_record,
    str: _str_record,
    bytes: _bytes_record(b"b"),
    bytearray: _bytes_record(b"B"),
}
"""Scalar types whose whole record can be built as one bytes object."""


def _from_record(record: Record, large: Handler | None = None) -> Handler:
    def encode(enc: Encoder, obj: Any) -> None:
        data = record(obj)
        if data is None:
            assert large is not None
            large(enc, obj)
        else:
            enc.out += data

    return encode


def _memoryview(enc: Encoder, obj: memoryview) -> None:
    enc.out += b"m"
    enc.write_text(obj.format)
    enc.encode(obj.shape)
    # tobytes() copies, but a memoryview of a huge buffer is rare; contiguous ones stream.
    enc.feed(obj if obj.c_contiguous else obj.tobytes())


def _items(enc: Encoder, items: Any) -> None:
    """Append the records of ``items`` in order (scalars without a call through the encoder)."""
    out = enc.out  # cleared in place by flushes, so this reference stays valid
    item_encode = enc.encode
    records = RECORDS
    for item in items:
        record = records.get(type(item))
        data = None if record is None else record(item)
        if data is None:
            item_encode(item)
        else:
            out += data


# Long sequences are encoded in slices of this many items, flushing the buffer in between.
_SLICE = 1024


def _sequence(tag: bytes, track: bool) -> Handler:
    def encode(enc: Encoder, obj: Any) -> None:
        if track and not enc.enter(obj):
            return
        size = len(obj)
        enc.out += tag + pack_u64(size)
        if size <= _SLICE:
            _items(enc, obj)
        else:
            for start in range(0, size, _SLICE):
                _items(enc, obj[start : start + _SLICE])
                enc.maybe_flush()
        if track:
            enc.leave(obj)

    return encode


def _dict(enc: Encoder, obj: dict[Any, Any]) -> None:
    if not enc.enter(obj):
        return
    sub_digest = enc.sub_digest
    oneshot = enc.digest.oneshot
    records = RECORDS
    entries = []
    for key, value in obj.items():
        # Same bytes as sub_digest(key, value) builds, without its bookkeeping.
        key_record = records.get(type(key))
        value_record = records.get(type(value))
        if key_record is not None and value_record is not None:
            key_data = key_record(key)
            value_data = value_record(value)
            if key_data is not None and value_data is not None:
                entries.append(oneshot(key_data + value_data))
                continue
        entries.append(sub_digest(key, value))
    entries.sort()
    enc.out += b"{" + pack_u64(len(entries))
    enc.out += b"".join(entries)
    enc.leave(obj)
    enc.maybe_flush()


def _ordered_dict(enc: Encoder, obj: collections.OrderedDict[Any, Any]) -> None:
    # Its order is part of its value (two OrderedDicts in different orders are not equal).
    if not enc.enter(obj):
        return
    enc.out += b"o" + pack_u64(len(obj))
    for key, value in obj.items():
        enc.encode(key)
        enc.encode(value)
    enc.leave(obj)


def _set_like(tag: bytes, track: bool) -> Handler:
    def encode(enc: Encoder, obj: Any) -> None:
        if track and not enc.enter(obj):
            return
        sub_digest = enc.sub_digest
        oneshot = enc.digest.oneshot
        records = RECORDS
        entries = []
        for item in obj:
            record = records.get(type(item))
            data = None if record is None else record(item)
            entries.append(sub_digest(item) if data is None else oneshot(data))
        entries.sort()
        enc.out += tag + pack_u64(len(entries))
        enc.out += b"".join(entries)
        if track:
            enc.leave(obj)
        enc.maybe_flush()

    return encode


def _triple(tag: bytes) -> Handler:
    def encode(enc: Encoder, obj: Any) -> None:
        enc.out += tag
        enc.encode(obj.start)
        enc.encode(obj.stop)
        enc.encode(obj.step)

    return encode


BUILTIN_HANDLERS: dict[type, Handler] = {
    type(None): _from_record(_none_record),
    bool: _from_record(_bool_record),
    int: _from_record(int_record),
    float: _from_record(_float_record),
    complex: _from_record(_complex_record),
    str: _from_record(_str_record, _str),
    bytes: _from_record(RECORDS[bytes], _bytes_like(b"b")),
    bytearray: _from_record(RECORDS[bytearray], _bytes_like(b"B")),
    memoryview: _memoryview,
    # Tuples cannot close a cycle on their own (a mutable container must be part of it, and
    # those are tracked), so they skip the path bookkeeping.
    tuple: _sequence(b"(", track=False),
    list: _sequence(b"[", track=True),
    dict: _dict,
    collections.OrderedDict: _ordered_dict,
    set: _set_like(b"S", track=True),
    frozenset: _set_like(b"Z", track=False),
    range: _triple(b"r"),
    slice: _triple(b"l"),
}
"""Handlers of the built-in value types (the first rows of the table above)."""
