"""Records for everything the exact-type table does not cover.

Checked in this order, first match wins:

1. numpy arrays, scalars and dtypes, and pandas objects -- only looked for when ``numpy`` /
   ``pandas`` is already in :data:`sys.modules` (an object of theirs cannot exist otherwise),
   so hashing never imports them;
2. enum members, dataclass instances, tuple subclasses (namedtuples), path subclasses;
3. classes (by qualified name);
4. the pickle-like fallback: the reducer registered in :data:`copyreg.dispatch_table` for the
   type, else ``obj.__reduce_ex__(4)`` -- protocol pinned at 4 -- whose parts
   (callable, args, state, list items, dict items, state setter) are encoded as records in
   turn. Nothing is pickled to bytes, so the result depends on what the object *reduces to*,
   not on pickle's byte format, and a ``__dict__`` state is hashed order-insensitively. Its
   stability is as good as the object's ``__reduce_ex__``: standard for user classes, at the
   mercy of the library for third-party ones.

Imports nothing from forklift outside :mod:`forklift.hashing` and :mod:`forklift.errors`.
"""

from __future__ import annotations

import copyreg
import dataclasses
import enum
import pathlib
import sys
from typing import Any

from forklift.errors import HashingError
from forklift.hashing import arrays, frames
from forklift.hashing.encoder import Encoder, pack_u64
from forklift.hashing.functions import encode_global
from forklift.hashing.names import class_name, public_module

__all__ = ["encode_other"]


def encode_other(enc: Encoder, obj: Any) -> None:
    """Append the record of ``obj``, whose exact type has no entry in the handler table."""
    numpy = sys.modules.get("numpy")
    if numpy is not None and arrays.encode_numpy(enc, obj, numpy):
        return
    pandas = sys.modules.get("pandas")
    if pandas is not None and frames.encode_pandas(enc, obj, pandas):
        return
    cls = type(obj)
    if isinstance(obj, enum.Enum):
        enc.out += b"E"
        enc.write_text(class_name(cls))
        # A Flag combination has no stable name across Python versions; its value is.
        enc.encode(obj.value if isinstance(obj, enum.Flag) else obj.name)
    elif isinstance(obj, type):
        enc.out += b"K"
        enc.write_text(public_module(obj.__module__, obj.__qualname__, obj) or obj.__module__)
        enc.write_text(obj.__qualname__)
    elif dataclasses.is_dataclass(obj):
        _encode_dataclass(enc, obj)
    elif isinstance(obj, tuple):
        enc.out += b"n"
        enc.write_text(class_name(cls))
        enc.encode(tuple(getattr(cls, "_fields", ())))
        enc.encode(tuple(obj))
        # None for a namedtuple (its fields are its whole value); other subclasses may carry more.
        enc.encode(getattr(obj, "__dict__", None))
    elif isinstance(obj, pathlib.PurePath):  # user subclasses of the path classes
        enc.out += b"p"
        enc.write_text(class_name(cls))
        enc.write_text(str(obj))
    else:
        _encode_reduced(enc, obj)


def _encode_dataclass(enc: Encoder, obj: Any) -> None:
    if not enc.enter(obj):
        return
    fields = dataclasses.fields(obj)
    enc.out += b"C"
    enc.write_text(class_name(type(obj)))
    enc.out += pack_u64(len(fields))
    for field in fields:
        enc.write_text(field.name)
        enc.encode(getattr(obj, field.name))
    enc.leave(obj)


def _encode_reduced(enc: Encoder, obj: Any) -> None:
    cls = type(obj)
    try:
        # As pickle does: a reducer registered with copyreg first (re.Pattern, numpy.ufunc...).
        reducer = copyreg.dispatch_table.get(cls)
        reduced = reducer(obj) if reducer is not None else obj.__reduce_ex__(4)
    except Exception as exc:
        raise HashingError(
            f"cannot hash an object of type {class_name(cls)}: it has no hashing rule and "
            f"cannot be reduced like pickle does ({exc})"
        ) from exc
    if isinstance(reduced, str):  # a global: pickle stores its name
        module = getattr(obj, "__module__", None)
        encode_global(enc, public_module(module, reduced, obj) or module, reduced)
        return
    if not isinstance(reduced, tuple) or not 2 <= len(reduced) <= 6:
        raise HashingError(
            f"cannot hash an object of type {class_name(cls)}: __reduce_ex__ returned "
            f"{type(reduced).__name__}, not a str or a tuple of 2 to 6 items"
        )
    if not enc.enter(obj):
        return
    parts = (*reduced, None, None, None, None)[:6]
    callable_, args, state, list_items, dict_items, setter = parts
    enc.out += b"R"
    enc.encode(callable_)
    enc.encode(args)
    enc.encode(state)
    enc.encode(None if list_items is None else list(list_items))
    enc.encode(None if dict_items is None else dict(dict_items))
    enc.encode(setter)
    enc.leave(obj)
