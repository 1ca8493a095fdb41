"""Builders for numpy's names in ``SAFE_GLOBALS``: dtypes, arrays, scalars, masked arrays.

numpy's own unpickling trusts its input: ``dtype.__setstate__`` believes the state's flags
(an object dtype can be told it holds no objects, and an array of it then dereferences file
bytes as pointers), and ``numpy.matrix(x)`` follows ``x.__array_interface__`` to any
address. So here nothing is handed to numpy's ``__setstate__`` or constructors:

* a dtype is rebuilt with numpy's public constructors from its state's *meaning* (type
  string, byte order, fields, subarray, size, datetime unit); numpy derives its flags;
* an array is made only by :func:`array_from_bytes`: a plain dtype (numbers, bools, bytes,
  text, datetimes, void and structures of those; never objects, never numpy 2's
  StringDType), a shape of non-negative ints, C or F order, and a buffer whose size is
  exactly what they imply;
* an object array is made only from a list of already decoded values, element by element;
* a class argument must be an ndarray subclass the allow-list accepted; the array is
  viewed as it (``view`` runs no constructor on file data).

Imports only :mod:`forklift.errors` (numpy itself on first use).
"""

from __future__ import annotations

import operator
from typing import Any

from forklift.persist.arrays import rebuild_array
from forklift.persist.decoding.machine import Decoder, Pending, Rule
from forklift.persist.decoding.rules import Builder, ClassOnly

__all__ = ["NUMPY_RULES", "array_class", "array_from_bytes", "plain_dtype", "shape_of"]

_CORES = ("numpy.core", "numpy._core")
_PLAIN_KINDS = frozenset("biufcmMSUV")
_DATETIME_UNITS = frozenset("Y M W D h m s ms us ns ps fs as generic".split())
_MAX_DIMS = 64


def _numpy() -> Any:
    import numpy

    return numpy


def plain_dtype(d: Decoder, value: Any) -> Any:
    """``value`` if it is a dtype whose items hold no pointers (numbers, text, structures)."""
    numpy = _numpy()
    if not isinstance(value, numpy.dtype):
        raise d.corrupt(f"expected a dtype, found {type(value).__name__}")
    pending = [value]
    while pending:
        dtype = pending.pop()
        if (
            dtype.hasobject
            or dtype.kind not in _PLAIN_KINDS
            or type(dtype).__module__
            not in (
                "numpy",
                "numpy.dtypes",
            )
        ):
            raise d.corrupt(f"arrays of dtype {dtype} cannot be built from file bytes")
        if dtype.subdtype is not None:
            pending.append(dtype.subdtype[0])
        if dtype.fields:
            pending.extend(field[0] for field in dtype.fields.values())
    return value


def shape_of(d: Decoder, value: Any) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or len(value) > _MAX_DIMS:
        raise d.corrupt("an array shape that is not a short tuple")
    numpy = _numpy()
    shape = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | numpy.integer) or item < 0:
            raise d.corrupt(f"an array shape with {item!r} in it")
        shape.append(operator.index(item))
    return tuple(shape)


def _count(shape: tuple[int, ...]) -> int:
    count = 1
    for n in shape:
        count *= n
    return count


def array_from_bytes(
    d: Decoder, data: Any, dtype: Any, shape: Any, order: Any, *, copy: bool
) -> Any:
    """An array over ``data`` after checking that dtype, shape and size agree exactly."""
    numpy = _numpy()
    dtype = plain_dtype(d, dtype)
    shape = shape_of(d, shape)
    if order not in ("C", "F"):
        raise d.corrupt(f"array order {order!r}")
    if isinstance(data, str):  # a Python 2 byte string, decoded as latin-1
        data = data.encode("latin-1")
    try:
        view = memoryview(data).cast("B")
    except TypeError:
        raise d.corrupt(f"array data is a {type(data).__name__}, not bytes") from None
    count = _count(shape)
    if count * dtype.itemsize != view.nbytes:
        raise d.corrupt(
            f"array of {shape} x {dtype} needs {count * dtype.itemsize} bytes, has {view.nbytes}"
        )
    if dtype.itemsize == 0:
        return numpy.empty(shape, dtype=dtype, order=order)
    if copy:
        d.charge(view.nbytes)
        data = bytearray(view)
    flat = numpy.frombuffer(data, dtype=dtype, count=count)
    return flat.reshape(shape, order=order)


def array_class(d: Decoder, value: Any, base: Any = None) -> Any:
    """``value`` (a decoded class) if it is an ndarray subclass (of ``base`` if given)."""
    numpy = _numpy()
    base = numpy.ndarray if base is None else base
    if not (isinstance(value, type) and issubclass(value, base)):
        raise d.corrupt(f"{value!r} is not a {base.__name__} class")
    return value


def _as_class(d: Decoder, array: Any, cls: Any) -> Any:
    numpy = _numpy()
    cls = array_class(d, cls)
    return array if cls is numpy.ndarray else array.view(cls)


def _object_array(d: Decoder, items: Any, shape: tuple[int, ...], order: str) -> Any:
    numpy = _numpy()
    if not isinstance(items, list) or len(items) != _count(shape):
        raise d.corrupt("an object array whose items do not match its shape")
    result = numpy.empty(len(items), dtype=object)
    for index, item in enumerate(items):
        result[index] = item  # one element at a time: never interpreted as a sequence
    return result.reshape(shape, order=order)


# -- dtypes ------------------------------------------------------------------------------
def _flexible(base: Any, elsize: Any) -> Any:
    numpy = _numpy()
    if base.kind in "SV" and type(elsize) is int and elsize > 0:
        return numpy.dtype(f"{base.kind}{elsize}")
    if base.kind == "U" and type(elsize) is int and elsize > 0 and elsize % 4 == 0:
        return numpy.dtype(f"U{elsize // 4}")
    return base


def _datetime(d: Decoder, base: Any, extra: Any) -> Any:
    numpy = _numpy()
    info = extra[1] if isinstance(extra, tuple) and len(extra) == 2 else None
    if not (isinstance(info, tuple) and len(info) == 4):
        return base
    unit, number = info[0], info[1]
    unit = unit.decode("ascii") if isinstance(unit, bytes) else unit
    if unit not in _DATETIME_UNITS or type(number) is not int or not 0 < number < 1 << 31:
        raise d.corrupt("a datetime dtype with an impossible unit")
    if unit == "generic":
        return numpy.dtype(f"{base.char}8")
    return numpy.dtype(f"{base.char}8[{number}{unit}]")


def _structured(d: Decoder, names: Any, fields: Any, elsize: Any, flags: Any) -> Any:
    numpy = _numpy()
    if not (isinstance(names, tuple) and isinstance(fields, dict) and type(elsize) is int):
        raise d.corrupt("a structured dtype with malformed fields")
    spec: dict[str, list[Any]] = {"names": [], "formats": [], "offsets": [], "titles": []}
    for name in names:
        field = fields.get(name) if isinstance(name, str) else None
        if not (isinstance(field, tuple) and 2 <= len(field) <= 3):
            raise d.corrupt(f"structured dtype field {name!r} is malformed")
        if not isinstance(field[0], numpy.dtype) or type(field[1]) is not int:
            raise d.corrupt(f"structured dtype field {name!r} is malformed")
        spec["names"].append(name)
        spec["formats"].append(field[0])
        spec["offsets"].append(field[1])
        spec["titles"].append(field[2] if len(field) == 3 else None)
    aligned = type(flags) is int and bool(flags & 0x80)  # NPY_ALIGNED_STRUCT
    return numpy.dtype({**spec, "itemsize": elsize}, align=aligned)


class _PendingDtype(Pending):
    """``numpy.dtype(typestr, align, copy)`` waiting for its state."""

    def __init__(self, d: Decoder, args: tuple[Any, ...]) -> None:
        if not args or len(args) > 3 or not isinstance(args[0], str):
            raise d.corrupt("numpy.dtype called with something other than a type string")
        self._base = _numpy().dtype(args[0])

    def finish(self, decoder: Decoder) -> Any:
        return self._base

    def build(self, state: Any, d: Decoder) -> Any:
        numpy = _numpy()
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
            raise d.corrupt("a dtype state numpy does not write")
        endian, subarray, names, fields, elsize, flags = state[1:6] + state[7:8]
        base = self._base
        if subarray is not None:
            if not (isinstance(subarray, tuple) and len(subarray) == 2):
                raise d.corrupt("a dtype with a malformed subarray")
            if not isinstance(subarray[0], numpy.dtype):
                raise d.corrupt("a dtype with a malformed subarray")
            return numpy.dtype((subarray[0], shape_of(d, subarray[1])))
        if names is not None:
            return _structured(d, names, fields, elsize, flags)
        if base.kind in "SUV":
            base = _flexible(base, elsize)
        if base.kind in "mM" and len(state) == 9:
            base = _datetime(d, base, state[8])
        if endian in ("<", ">") and base.str[0] not in ("|", endian):
            base = base.newbyteorder(endian)
        return base


# -- arrays, scalars, masked arrays ------------------------------------------------------
class _PendingArray(Pending):
    """numpy's ``_reconstruct(cls, shape, typecode)``, waiting for (shape, dtype, data)."""

    def __init__(self, d: Decoder, args: tuple[Any, ...]) -> None:
        if len(args) != 3:
            raise d.corrupt("_reconstruct called with the wrong arguments")
        self._cls = array_class(d, args[0])

    def build(self, state: Any, d: Decoder) -> Any:
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]  # (version, shape, dtype, is_fortran, data)
        if not (isinstance(state, tuple) and len(state) == 4):
            raise d.corrupt("an array state numpy does not write")
        shape, dtype, fortran, data = state
        order = "F" if fortran else "C"
        numpy = _numpy()
        if isinstance(dtype, numpy.dtype) and dtype == numpy.dtype(object):
            array = _object_array(d, data, shape_of(d, shape), order)
        else:
            array = array_from_bytes(d, data, dtype, shape, order, copy=True)
        return _as_class(d, array, self._cls)


class _PendingMasked(Pending):
    """``numpy.ma.core._mareconstruct(cls, baseclass, shape, typecode)``, waiting for state."""

    def __init__(self, d: Decoder, args: tuple[Any, ...]) -> None:
        if len(args) != 4:
            raise d.corrupt("_mareconstruct called with the wrong arguments")
        self._cls = array_class(d, args[0], _numpy().ma.MaskedArray)

    def build(self, state: Any, d: Decoder) -> Any:
        numpy = _numpy()
        if not (isinstance(state, tuple) and len(state) == 7):
            raise d.corrupt("a masked array state numpy does not write")
        _, shape, dtype, fortran, data, mask, fill = state
        order = "F" if fortran else "C"
        values = array_from_bytes(d, data, dtype, shape, order, copy=True)
        mask_type = numpy.ma.make_mask_descr(dtype)
        hidden = array_from_bytes(d, mask, mask_type, shape, order, copy=True)
        # numpy writes the fill value as a 0-d array (made by a builder here) or a scalar
        if fill is not None and not isinstance(
            fill, bool | int | float | complex | str | bytes | numpy.generic | numpy.ndarray
        ):
            raise d.corrupt(f"a masked array whose fill value is a {type(fill).__name__}")
        if isinstance(fill, numpy.generic | numpy.ndarray) and (
            fill.dtype.hasobject or fill.size != 1
        ):
            raise d.corrupt("a masked array whose fill value is not one plain item")
        result = numpy.ma.MaskedArray(values, mask=hidden, fill_value=fill)
        return result if self._cls is numpy.ma.MaskedArray else result.view(self._cls)


def _scalar(d: Decoder, args: tuple[Any, ...]) -> Any:
    numpy = _numpy()
    if len(args) == 2 and isinstance(args[0], numpy.dtype) and args[0] == numpy.dtype(object):
        return args[1]  # numpy's scalar(object dtype, item) is the item itself
    if len(args) != 2:
        raise d.corrupt("numpy scalar called with the wrong arguments")
    dtype = plain_dtype(d, args[0])
    return array_from_bytes(d, args[1], dtype, (1,), "C", copy=True)[0]


def _frombuffer(d: Decoder, args: tuple[Any, ...]) -> Any:
    if len(args) != 4:
        raise d.corrupt("_frombuffer called with the wrong arguments")
    buffer, dtype, shape, order = args
    return array_from_bytes(d, buffer, dtype, shape, order, copy=False)


def _rebuild_array(d: Decoder, args: tuple[Any, ...]) -> Any:
    if len(args) != 5:
        raise d.corrupt("rebuild_array called with the wrong arguments")
    buffer, dtype, shape, order, subclass = args
    array_from_bytes(d, buffer, dtype, shape, order, copy=False)  # checks only
    if subclass is not None:
        array_class(d, subclass)
    return rebuild_array(buffer, dtype, shape_of(d, shape), order, subclass)


def _dtype_class(d: Decoder, args: tuple[Any, ...]) -> Any:
    raise d.corrupt("a numpy DType class called with arguments")


class _DtypeClass(ClassOnly):
    """``numpy.dtypes.Float64DType``: a class value; called without arguments, an instance."""

    def __init__(self, qualname: str) -> None:
        self._qualname = qualname

    def call(
        self, decoder: Decoder, args: tuple[Any, ...], kwargs: dict[str, Any], *, new: bool
    ) -> Any:
        if args or kwargs:
            return _dtype_class(decoder, args)
        return getattr(_numpy().dtypes, self._qualname)()


_DTYPE_CLASSES = (
    "Bool Int8 Int16 Int32 Int64 UInt8 UInt16 UInt32 UInt64 Float16 Float32 Float64 "
    "LongDouble Complex64 Complex128 CLongDouble Bytes Str Void DateTime64 TimeDelta64 Object"
).split()

NUMPY_RULES: dict[str, Rule] = {
    "numpy.dtype": Builder(_PendingDtype),
    "numpy.ndarray": ClassOnly(),
    "numpy.matrix": ClassOnly(),
    "numpy.matrixlib.defmatrix.matrix": ClassOnly(),
    "numpy.ma.MaskedArray": ClassOnly(),
    "numpy.ma.core.MaskedArray": ClassOnly(),
    "numpy.ma.core._mareconstruct": Builder(_PendingMasked),
    "forklift.persist.arrays.rebuild_array": Builder(_rebuild_array),
    **{f"{core}.multiarray._reconstruct": Builder(_PendingArray) for core in _CORES},
    **{f"{core}.multiarray.scalar": Builder(_scalar) for core in _CORES},
    **{f"{core}.numeric._frombuffer": Builder(_frombuffer) for core in _CORES},
    **{f"numpy.dtypes.{name}DType": _DtypeClass(f"{name}DType") for name in _DTYPE_CLASSES},
}
