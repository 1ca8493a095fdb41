"""Restricted loads (and inspection) of files written by joblib, through the safe decoder.

joblib's stream interleaves array bytes with the pickle: each array is a wrapper object
whose BUILD is followed by the raw data (object arrays: a nested pickle). Here a wrapper is
a :class:`~forklift.persist.decoding.Pending` object: its BUILD state (a dict) is checked
(plain dtype, shape of ints, order, a class that is an ndarray subclass), then exactly the
implied number of bytes is read from the stream, piece by piece into an array allocated
untouched, so a false size costs only what the stream really holds. In an uncompressed
file the size is also checked against the bytes left in the file before anything is
allocated. Old layouts with companion files (``.npy``, ``.npy.z``) are read the same way.

While inspecting (``describe=True``) the data is skipped and described instead.

Imports only :mod:`forklift.errors` (numpy lazily).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from typing import IO, Any

from forklift.errors import CorruptFileError, UnsupportedFormatError
from forklift.persist.decoding import Decoder, Pending, Resolver, decode_stream, safe_rules
from forklift.persist.decoding.machine import Rule
from forklift.persist.decoding.numpy_builders import (
    array_class,
    array_from_bytes,
    plain_dtype,
    shape_of,
)
from forklift.persist.decoding.rules import Builder

__all__ = ["JoblibContext", "decode_joblib", "read_zfile"]

_PIECE = 16 << 20
#: Object arrays nest a pickle per level; a file may not nest them deeper than this.
_MAX_NESTING = 32


@dataclass
class JoblibContext:
    """What the wrappers need: where the file is, how to map, what to report."""

    name: str
    path: str | None
    mmap_mode: str | None
    file_size: int | None  # known for an uncompressed file: bounds declared array sizes
    describe: bool = False
    arrays: list[tuple[str, str, tuple[int, ...], str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    depth: int = 0


def _numpy() -> Any:
    import numpy

    return numpy


def _class_name(value: Any) -> str:
    return getattr(value, "__name__", "ndarray")


class _ArrayWrapper(Pending):
    """joblib's NumpyArrayWrapper: state first, then the array's bytes in the stream."""

    def __init__(self, context: JoblibContext, resolver: Resolver) -> None:
        self._context = context
        self._resolver = resolver

    def build(self, state: Any, d: Decoder) -> Any:
        context = self._context
        if not isinstance(state, dict):
            raise d.corrupt("an array wrapper whose state is not a dict")
        numpy = _numpy()
        dtype = state.get("dtype")
        if not isinstance(dtype, numpy.dtype):
            raise d.corrupt("an array wrapper without a dtype")
        shape = shape_of(d, state.get("shape"))
        order = state.get("order", "C")
        if order not in ("C", "F"):
            raise d.corrupt(f"array order {order!r}")
        subclass = state.get("subclass")
        if dtype.hasobject:
            array = self._nested(d)
        else:
            array = self._read(d, state, plain_dtype(d, dtype), shape, order)
        if context.describe:
            nbytes = 0 if dtype.hasobject else dtype.itemsize * _count(shape)
            context.arrays.append((_class_name(subclass), dtype.str, shape, order, nbytes))
            return None
        if subclass is None or subclass in (numpy.ndarray, numpy.memmap):
            return array
        return array.view(array_class(d, subclass))

    def _nested(self, d: Decoder) -> Any:
        context = self._context
        if context.depth >= _MAX_NESTING:
            raise d.corrupt(f"object arrays nested more than {_MAX_NESTING} deep")
        context.depth += 1
        try:
            array = decode_stream(
                d.file, name=context.name, resolver=self._resolver, encoding=d.encoding
            )
        finally:
            context.depth -= 1
        if not context.describe and not isinstance(array, _numpy().ndarray):
            raise d.corrupt("an object array wrapper holding something else")
        return array

    def _read(self, d: Decoder, state: dict[Any, Any], dtype: Any, shape: Any, order: str) -> Any:
        numpy = _numpy()
        context = self._context
        if state.get("numpy_array_alignment_bytes") is not None:
            d.read(d.read(1)[0])
        count = _count(shape)
        nbytes = count * dtype.itemsize
        if context.file_size is not None and d.file.tell() + nbytes > context.file_size:
            raise d.corrupt(f"an array of {nbytes} bytes, more than the file holds")
        if context.describe:
            for start in range(0, nbytes, _PIECE):
                d.read(min(_PIECE, nbytes - start))
            return None
        if context.mmap_mode is not None and state.get("allow_mmap") and context.path:
            offset = d.file.tell()
            array = numpy.memmap(
                context.path,
                dtype=dtype,
                mode="r+" if context.mmap_mode == "w+" else context.mmap_mode,
                offset=offset,
                shape=shape,
                order=order,
            )
            d.file.seek(offset + nbytes)
            return array
        try:
            array = numpy.empty(count, dtype=dtype)  # untouched pages cost nothing yet
        except MemoryError:
            raise d.corrupt(f"an array of {nbytes} bytes, more than this machine has") from None
        target = memoryview(array.view(numpy.uint8).reshape(-1))
        for start in range(0, nbytes, _PIECE):
            piece = d.read(min(_PIECE, nbytes - start))
            target[start : start + len(piece)] = piece
        return array.reshape(shape, order=order)


def _count(shape: tuple[int, ...]) -> int:
    count = 1
    for n in shape:
        count *= n
    return count


def _companion(d: Decoder, context: JoblibContext, filename: Any) -> str:
    if not isinstance(filename, str):
        raise d.corrupt("a companion file name that is not a string")
    if context.path is None:
        raise UnsupportedFormatError(
            f"{context.name}: this old joblib file keeps arrays in companion files; "
            "load it by path, not from a file object"
        )
    return os.path.join(os.path.dirname(context.path), os.path.basename(filename))


def _described(state: Any, d: Decoder, context: JoblibContext) -> bool:
    """Check a companion-file wrapper's state; True when inspecting (its file is noted, not
    read)."""
    if not isinstance(state, dict):
        raise d.corrupt("an array wrapper whose state is not a dict")
    if context.describe:
        context.notes.append(f"array in companion file {state.get('filename')}")
    return context.describe


class _NpyWrapper(Pending):
    """joblib < 0.10's NDArrayWrapper: the array is in a companion ``.npy`` file."""

    def __init__(self, context: JoblibContext, resolver: Resolver) -> None:
        self._context = context
        self._resolver = resolver

    def build(self, state: Any, d: Decoder) -> Any:
        numpy = _numpy()
        from numpy.lib import format as npy

        context = self._context
        if _described(state, d, context):
            return None
        companion = _companion(d, context, state.get("filename"))
        with open(companion, "rb") as handle:
            version = npy.read_magic(handle)
            reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            raw_shape, fortran, dtype = reader(handle)
            shape, order = shape_of(d, raw_shape), "F" if fortran else "C"
            if dtype.hasobject:
                array = decode_stream(
                    handle, name=companion, resolver=self._resolver, encoding=d.encoding
                )
                if not isinstance(array, numpy.ndarray):
                    raise d.corrupt("a companion file holding something else than an array")
            else:
                nbytes = _count(shape) * plain_dtype(d, dtype).itemsize
                if handle.tell() + nbytes > os.fstat(handle.fileno()).st_size:
                    raise d.corrupt(f"{companion} is shorter than its array")
                if context.mmap_mode is not None and state.get("allow_mmap"):
                    return numpy.memmap(
                        companion,
                        dtype=dtype,
                        mode="r+" if context.mmap_mode == "w+" else context.mmap_mode,
                        offset=handle.tell(),
                        shape=shape,
                        order=order,
                    )
                array = numpy.fromfile(handle, dtype=dtype, count=_count(shape))
                array = array.reshape(shape, order=order)
        subclass = state.get("subclass")
        if subclass is None or subclass is numpy.ndarray:
            return array
        return array.view(array_class(d, subclass))


class _ZnpyWrapper(Pending):
    """joblib < 0.10's ZNDArrayWrapper: the array's bytes in a ``ZF`` companion file."""

    def __init__(self, context: JoblibContext) -> None:
        self._context = context

    def build(self, state: Any, d: Decoder) -> Any:
        context = self._context
        if _described(state, d, context):
            return None
        init, inner = state.get("init_args"), state.get("state")
        if not (isinstance(init, tuple) and init and isinstance(inner, tuple | list)):
            raise d.corrupt("a compressed-array wrapper with a malformed state")
        if len(inner) != 4:
            raise d.corrupt("a compressed-array wrapper with a malformed state")
        cls = array_class(d, init[0])
        _, shape, dtype, fortran = inner
        with open(_companion(d, context, state.get("filename")), "rb") as handle:
            data = read_zfile(handle, d.name)
        order = "F" if fortran else "C"
        array = array_from_bytes(d, data, dtype, shape, order, copy=False)
        return array if cls is _numpy().ndarray else array.view(cls)


def read_zfile(file: IO[bytes], name: str) -> bytearray:
    """joblib's old ``ZF`` container (``ZF``, hex length, spaces, zlib data), decompressed
    with its declared length as the limit."""
    head = file.read(32)
    if not head.startswith(b"ZF"):
        raise CorruptFileError(f"{name}: not a ZF container")
    position = 2
    while position < len(head) and head[position : position + 1] in b"0123456789abcdefxL":
        position += 1
    length_text = head[2:position].rstrip(b"L")
    while position < len(head) and head[position : position + 1] == b" ":
        position += 1
    try:
        expected = int(length_text, 16)
    except ValueError:
        raise CorruptFileError(f"{name}: ZF container with a damaged length") from None
    decompressor = zlib.decompressobj()
    try:
        data = decompressor.decompress(head[position:] + file.read(), expected + 1)
    except zlib.error as exc:
        raise CorruptFileError(f"{name}: damaged ZF container ({exc})") from None
    if len(data) != expected or not decompressor.eof:
        raise CorruptFileError(f"{name}: ZF container holds other than its {expected} bytes")
    return bytearray(data)


def _wrapper_rules(context: JoblibContext, resolver: Resolver) -> dict[str, Rule]:
    return {
        "joblib.numpy_pickle.NumpyArrayWrapper": Builder(
            lambda d, args: _ArrayWrapper(context, resolver)
        ),
        "joblib.numpy_pickle.NDArrayWrapper": Builder(
            lambda d, args: _NpyWrapper(context, resolver)
        ),
        "joblib.numpy_pickle.ZNDArrayWrapper": Builder(lambda d, args: _ZnpyWrapper(context)),
    }


def decode_joblib(
    stream: IO[bytes], context: JoblibContext, allowed: frozenset[str] | None
) -> tuple[Any, list[str]]:
    """Decode a joblib pickle stream; returns the value and the globals it named.

    ``allowed`` None with ``context.describe`` is inspection: every global is recorded and
    becomes an inert stub, except numpy dtypes (needed to skip array bytes) and the
    wrappers.
    """
    rules: dict[str, Rule] = {}
    resolver = Resolver(allowed, rules, inert=context.describe)
    if context.describe:
        base = safe_rules()
        rules["numpy.dtype"] = base["numpy.dtype"]
    else:
        rules.update(safe_rules())
    rules.update(_wrapper_rules(context, resolver))
    value = decode_stream(stream, name=context.name, resolver=resolver, encoding="latin1")
    return value, resolver.seen
