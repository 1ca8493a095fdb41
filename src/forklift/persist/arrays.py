"""How numpy arrays travel through forklift's pickle stream.

:func:`reduce_array` is called by the writer's pickler for every ndarray. Arrays with a
fixed-size dtype are reduced to ``rebuild_array(PickleBuffer, dtype, shape, order, subclass)``:
the PickleBuffer is a protocol-5 out-of-band buffer, written raw and aligned after the pickle
stream, so :func:`rebuild_array` can wrap the loaded (or memory-mapped) bytes without copying.
``forklift.persist.arrays.rebuild_array`` is part of the file format; keep its name and
signature stable.

numpy is optional: this module imports it lazily, only when an array is met.
Imports nothing from forklift.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

__all__ = [
    "as_native",
    "empty_block",
    "native_byte_order",
    "numpy_if_loaded",
    "rebuild_array",
    "reduce_array",
    "reduce_small_array",
    "shuffle_bytes",
    "unshuffle_in_place",
    "unshuffle_into",
]


def numpy_if_loaded() -> Any:
    """The numpy module if the program already imported it (an array can only exist then)."""
    return sys.modules.get("numpy")


#: A block of at least this many bytes is placed at an address that agrees with the file
#: offset it is read from, modulo :data:`PAGE` (see :func:`empty_block`).
MATCHED_BLOCK = 1 << 20
PAGE = 4096


def empty_block(length: int, offset: int = 0) -> Any:
    """An uninitialised writable byte block: a uint8 array when numpy can be imported
    (it skips bytearray's zero fill, and untouched pages cost no memory), else a bytearray.
    MemoryError when the machine cannot reserve ``length`` bytes.

    ``offset``: where in the file the block's bytes start. A large block's address is made
    equal to it modulo a page (a view of a block one page longer), because the kernel's copy
    out of the page cache (``rep movsb`` on this AMD EPYC) ran 3x slower when the destination
    sat 16 bytes past the source within a page: numpy's large allocations start 16 bytes
    into a page, so every page-aligned section (see :func:`.layout.buffer_alignment`) hit
    it. Measured, 256 MB read from the page cache: 33 ms with matching page offsets, 105 ms
    for a page-aligned source into numpy's block, 31-37 ms for other pairs.
    """
    numpy: Any = sys.modules.get("numpy")
    if numpy is None:
        try:
            import numpy
        except ImportError:
            return bytearray(length)
    if length < MATCHED_BLOCK:
        return numpy.empty(length, dtype=numpy.uint8)
    block = numpy.empty(length + PAGE, dtype=numpy.uint8)
    shift = (offset - block.__array_interface__["data"][0]) % PAGE
    return block[shift : shift + length]


def _overrides_reduce(cls: type, ndarray: type) -> bool:
    """True if a subclass pickles itself its own way (masked arrays, user classes)."""
    for attribute in ("__reduce_ex__", "__reduce__", "__getstate__", "__setstate__"):
        if getattr(cls, attribute, None) is not getattr(ndarray, attribute, None):
            return True
    return False


def reduce_array(array: Any, protocol: int) -> Any:
    """Reduce ``array`` to an out-of-band buffer, or NotImplemented for pickle's default.

    Object arrays, zero-size itemsizes and subclasses with their own pickling keep numpy's
    own (in-band) path, which is exact. ``np.memmap`` is saved as plain data: it loads back
    as an ndarray, or as a memmap when loaded with ``mmap_mode``.
    """
    numpy = numpy_if_loaded()
    if numpy is None or protocol < 5:
        return NotImplemented
    dtype = array.dtype
    if dtype.hasobject or dtype.itemsize == 0:
        return NotImplemented
    cls = type(array)
    subclass: type | None = None
    if cls is not numpy.ndarray:
        if issubclass(cls, numpy.memmap):
            subclass = None
        elif _overrides_reduce(cls, numpy.ndarray):
            return NotImplemented
        else:
            subclass = cls
    if array.flags.c_contiguous:
        order, data = "C", array
    elif array.flags.f_contiguous:
        order, data = "F", array
    else:
        # A strided view is copied once into a contiguous block; it loads back with the
        # same shape and values (as numpy's own pickling does).
        order, data = "C", numpy.ascontiguousarray(array)
    # A flat uint8 view of the memory (no copy): PickleBuffer refuses some dtypes (datetime)
    # and the writer only needs the bytes.
    raw = data.view(numpy.ndarray).ravel(order="K").view(numpy.uint8)
    return (
        rebuild_array,
        (pickle.PickleBuffer(raw), dtype, tuple(array.shape), order, subclass),
    )


def reduce_small_array(array: Any, protocol: int) -> Any:
    """Reduce a small plain array to its bytes, in-band (cheaper than a PickleBuffer).

    A writable array travels as a bytearray (it loads writable), a read-only one as bytes.
    """
    if protocol < 5 or array.dtype.hasobject or array.dtype.itemsize == 0:
        return NotImplemented
    # Every layout is handled here, never by numpy's own pickling, which (numpy 2.x) loses
    # the byte order of non-native datetime arrays.
    order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
    data = array.tobytes(order=order)
    payload = bytearray(data) if array.flags.writeable else data
    return (rebuild_array, (payload, array.dtype, array.shape, order, None))


def rebuild_array(
    buffer: Any, dtype: Any, shape: tuple[int, ...], order: str, subclass: type | None
) -> Any:
    """Wrap ``buffer`` as an array; keeps np.memmap when the buffer is a slice of a memmap."""
    import numpy

    base = buffer.obj if isinstance(buffer, memoryview) else buffer
    if isinstance(base, numpy.memmap) and subclass is None:
        # Loaded with mmap_mode: keep the memmap type (and its file) like np.load does.
        flat = base.view(dtype)
    else:
        flat = numpy.frombuffer(buffer, dtype=dtype)
    result = flat.reshape(shape, order="F" if order == "F" else "C")
    if subclass is not None:
        if not (isinstance(subclass, type) and issubclass(subclass, numpy.ndarray)):
            raise TypeError(f"{subclass!r} is not an ndarray subclass")
        result = result.view(subclass)
    return as_native(result)


#: Set by ``load(..., ensure_native_byte_order=...)`` while it unpickles: arrays rebuilt then
#: are converted to the machine's byte order. A ContextVar, so concurrent loads in other
#: threads keep their own choice.
_NATIVE_BYTE_ORDER: ContextVar[bool] = ContextVar("forklift_native_byte_order", default=False)


@contextlib.contextmanager
def native_byte_order(enabled: bool) -> Iterator[None]:
    """While the block runs, :func:`as_native` converts (``enabled``) or keeps byte orders."""
    token = _NATIVE_BYTE_ORDER.set(enabled)
    try:
        yield
    finally:
        _NATIVE_BYTE_ORDER.reset(token)


def as_native(array: Any) -> Any:
    """``array`` in the machine's byte order if a load asked for it (joblib's default), else
    ``array`` itself. Memory-mapped loads never ask: converting would copy the map."""
    dtype = getattr(array, "dtype", None)
    if not _NATIVE_BYTE_ORDER.get() or dtype is None or dtype.isnative:
        return array
    return array.astype(dtype.newbyteorder("="))


def shuffle_bytes(chunk: memoryview, width: int) -> memoryview:
    """Group byte k of every item together (all first bytes, then all second bytes, ...).

    Numbers of one array share their high bytes (exponents, small integers), so a codec
    sees long runs; measured on float64, zlib-3 gets 10-25% smaller and twice as fast.
    """
    import numpy

    planes = numpy.frombuffer(chunk, dtype=numpy.uint8).reshape(-1, width).T.copy()
    return memoryview(planes).cast("B")


def unshuffle_into(data: bytes | memoryview, width: int, target: memoryview) -> None:
    """Write the items of ``data`` (one chunk shuffled by :func:`shuffle_bytes`) to ``target``."""
    import numpy

    planes = numpy.frombuffer(data, dtype=numpy.uint8).reshape(width, -1)
    numpy.copyto(numpy.frombuffer(target, dtype=numpy.uint8).reshape(-1, width), planes.T)


def unshuffle_in_place(target: memoryview, width: int) -> None:
    """Undo :func:`shuffle_bytes` on ``target`` (one shuffled chunk), in place."""
    import numpy

    items = numpy.frombuffer(target, dtype=numpy.uint8)
    planes = items.copy().reshape(width, -1)  # numpy copies release the GIL: chunks in threads
    numpy.copyto(items.reshape(-1, width), planes.T)
