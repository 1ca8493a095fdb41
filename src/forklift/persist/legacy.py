"""Reading files written by joblib's ``dump`` (without importing joblib).

Layouts understood (see ``docs/format.md``, "Files written by joblib"):

* joblib >= 0.10: one pickle stream in which each numpy array is a ``NumpyArrayWrapper``
  object followed, right after its BUILD opcode, by the array's raw bytes (object arrays:
  a nested pickle), possibly preceded by alignment padding. Uncompressed, or the whole stream
  compressed with zlib, gzip, bz2, lzma, xz or lz4 (recognised by their magic bytes).
* joblib < 0.10, uncompressed: a pickle of ``NDArrayWrapper`` objects naming companion
  ``<file>_NN.npy`` files next to it.
* joblib < 0.10, compressed: the ``ZF`` zlib container holding a plain pickle, or (with
  ``cache_size``) a pickle of ``ZNDArrayWrapper`` objects naming ``ZF``-compressed companion
  ``.npy.z`` files.

Python 2 pickles are read with ``encoding="latin1"``, as numpy requires; a Python 2 byte
string therefore loads as a ``str`` of the same code points.

Plain loads use :class:`pickle._Unpickler` (the pure-Python unpickler) because the array
bytes sit inside the pickle stream: its BUILD step is extended to read them. Restricted loads
(``allowed_globals``) never run pickle: :mod:`forklift.persist.legacy_safe` reads the same
layouts with forklift's safe decoder. Both are kept on their own so that they can be deleted
when joblib files no longer matter.

Imports only :mod:`forklift.errors`.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import zlib
from collections.abc import Callable
from typing import IO, Any, cast

from forklift.errors import (
    CompressorUnavailableError,
    CorruptFileError,
    ForkliftError,
    UnsafeLoadError,
    UnsupportedFormatError,
)
from forklift.persist import arrays
from forklift.persist.legacy_safe import JoblibContext, decode_joblib, read_zfile

__all__ = ["detect", "load_legacy", "open_stream"]

_READ_CHUNK = 16 << 20
_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"ZF", "joblib-zfile"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ", "xz"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x78", "zlib"),
)


def detect(head: bytes) -> str | None:
    """The joblib compression (or container) that ``head`` starts with, None for a pickle."""
    for magic, name in _MAGICS:
        if head.startswith(magic):
            return name
    return None


class _ZlibReader(io.RawIOBase):
    """A readable stream over a raw zlib stream (what joblib's ``zlib`` codec writes)."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._decompressor = zlib.decompressobj()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            if self._decompressor.eof:
                return 0
            compressed = self._decompressor.unconsumed_tail or self._file.read(1 << 20)
            if not compressed:
                raise EOFError("zlib stream ended before its end marker")
            self._pending = self._decompressor.decompress(compressed, 1 << 22)
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def _read_zfile(file: IO[bytes]) -> bytes:
    """Decompress joblib's old ``ZF`` container, never past its declared length."""
    return bytes(read_zfile(file, getattr(file, "name", "<ZF container>")))


def open_stream(file: IO[bytes], kind: str | None) -> IO[bytes]:
    if kind is None:
        return file
    if kind == "zlib":
        return io.BufferedReader(_ZlibReader(file), 1 << 20)
    if kind == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=file, mode="rb"))
    if kind == "bz2":
        return bz2.BZ2File(file, "rb")
    if kind in ("xz", "lzma"):
        return lzma.LZMAFile(file, "rb")
    if kind == "lz4":
        try:
            import lz4.frame
        except ImportError as exc:
            raise CompressorUnavailableError(
                "this joblib file is lz4-compressed: pip install 'forklift[lz4]'"
            ) from exc
        return lz4.frame.LZ4FrameFile(file, "rb")  # type: ignore[no-any-return]
    if kind == "joblib-zfile":
        return io.BytesIO(_read_zfile(file))
    raise UnsupportedFormatError(f"unknown joblib compression {kind!r}")


class _ArrayWrapper:
    """Inert stand-in for joblib's NumpyArrayWrapper (state set by BUILD)."""

    def read(self, unpickler: _JoblibUnpickler) -> Any:
        numpy = unpickler.numpy()
        state = self.__dict__
        dtype = numpy.dtype(state["dtype"])
        shape = tuple(int(n) for n in state["shape"])
        order = state.get("order", "C")
        if dtype.hasobject:
            array = unpickler.nested().load()
        else:
            if state.get("numpy_array_alignment_bytes") is not None:
                padding = unpickler.read(1)
                if len(padding) != 1:
                    raise EOFError("file ended inside an array header")
                unpickler.read(padding[0])
            count = 1
            for n in shape:
                count *= n
            nbytes = count * dtype.itemsize
            end = unpickler.file_size
            if end is not None and unpickler.file.tell() + nbytes > end:
                raise EOFError(f"an array of {nbytes} bytes, more than the file holds")
            if unpickler.mmap_mode is not None and state.get("allow_mmap") and unpickler.path:
                array = unpickler.map_array(dtype, shape, order, nbytes)
            else:
                array = numpy.empty(count, dtype=dtype)
                target = memoryview(array.view(numpy.uint8).reshape(-1))
                for start in range(0, nbytes, _READ_CHUNK):
                    piece = unpickler.read(min(_READ_CHUNK, nbytes - start))
                    if len(piece) != min(_READ_CHUNK, nbytes - start):
                        raise EOFError("file ended inside an array")
                    target[start : start + len(piece)] = piece
                array = array.reshape(shape, order="F" if order == "F" else "C")
        # load(ensure_native_byte_order=...) converts here, as joblib's reader does
        return arrays.as_native(_as_subclass(numpy, array, state.get("subclass")))


def _as_subclass(numpy: Any, array: Any, subclass: Any) -> Any:
    if subclass is None or subclass in (numpy.ndarray, numpy.memmap):
        return array
    if not (isinstance(subclass, type) and issubclass(subclass, numpy.ndarray)):
        raise TypeError(f"{subclass!r} is not an ndarray subclass")
    return array.view(subclass)


class _NDArrayWrapper:
    """Stand-in for joblib < 0.10's NDArrayWrapper: the array is in a companion .npy file."""

    def read(self, unpickler: _JoblibUnpickler) -> Any:
        numpy = unpickler.numpy()
        companion = unpickler.companion(self.__dict__["filename"])
        from numpy.lib import format as npy

        with open(companion, "rb") as handle:
            version = npy.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = npy.read_array_header_1_0(handle)
            else:
                shape, fortran, dtype = npy.read_array_header_2_0(handle)
            order = "F" if fortran else "C"
            if dtype.hasobject:
                array = _JoblibUnpickler(handle, unpickler.name, None, None, unpickler.allowed)
                array = array.load()
            elif unpickler.mmap_mode is not None and self.__dict__.get("allow_mmap"):
                mode = "r+" if unpickler.mmap_mode == "w+" else unpickler.mmap_mode
                array = numpy.memmap(
                    companion,
                    dtype=dtype,
                    mode=mode,
                    offset=handle.tell(),
                    shape=shape,
                    order=order,
                )
            else:
                count = 1
                for n in shape:
                    count *= n
                array = numpy.fromfile(handle, dtype=dtype, count=count)
                if array.size != count:
                    raise EOFError(f"{companion}: file ended inside the array")
                array = array.reshape(shape, order=order)
        return _as_subclass(numpy, array, self.__dict__.get("subclass"))


class _ZNDArrayWrapper:
    """Stand-in for joblib < 0.10's ZNDArrayWrapper: data in a ZF-compressed companion."""

    def read(self, unpickler: _JoblibUnpickler) -> Any:
        numpy = unpickler.numpy()
        state = self.__dict__
        companion = unpickler.companion(state["filename"])
        with open(companion, "rb") as handle:
            data = _read_zfile(handle)
        subclass = state["init_args"][0]
        if not (isinstance(subclass, type) and issubclass(subclass, numpy.ndarray)):
            raise TypeError(f"{subclass!r} is not an ndarray subclass")
        array = numpy.ndarray.__new__(subclass, (0,), dtype="b")
        array.__setstate__((*tuple(state["state"]), data))
        return array


_WRAPPERS: dict[tuple[str, str], type] = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): _ArrayWrapper,
    ("joblib.numpy_pickle", "NDArrayWrapper"): _NDArrayWrapper,
    ("joblib.numpy_pickle", "ZNDArrayWrapper"): _ZNDArrayWrapper,
}
_WRAPPER_TYPES = tuple(_WRAPPERS.values())


class _JoblibUnpickler(pickle._Unpickler):
    """Pure-Python unpickler whose BUILD step turns joblib's wrappers into arrays."""

    dispatch = pickle._Unpickler.dispatch.copy()
    file_size: int | None = None  # absolute end of an uncompressed file, else None
    # Set by pickle._Unpickler.load(); declared for the type checker.
    read: Callable[[int], bytes]
    stack: list[Any]

    def __init__(
        self,
        file: IO[bytes],
        name: str,
        path: str | None,
        mmap_mode: str | None,
        allowed: frozenset[str] | None,
    ) -> None:
        super().__init__(file, encoding="latin1")
        self.file = file
        self.name = name
        self.path = path
        self.mmap_mode = mmap_mode
        self.allowed = allowed

    def numpy(self) -> Any:
        try:
            import numpy
        except ImportError as exc:  # pragma: no cover - numpy is there when arrays are
            raise UnsupportedFormatError(f"{self.name}: holds numpy arrays; install numpy") from exc
        return numpy

    def nested(self) -> _JoblibUnpickler:
        return _JoblibUnpickler(self.file, self.name, None, None, self.allowed)

    def companion(self, filename: str) -> str:
        if self.path is None:
            raise UnsupportedFormatError(
                f"{self.name}: this old joblib file keeps arrays in companion files; "
                "load it by path, not from a file object"
            )
        return os.path.join(os.path.dirname(self.path), os.path.basename(filename))

    def map_array(self, dtype: Any, shape: tuple[int, ...], order: str, nbytes: int) -> Any:
        numpy = self.numpy()
        offset = self.file.tell()
        mode = "r+" if self.mmap_mode == "w+" else self.mmap_mode
        assert self.path is not None
        array = numpy.memmap(
            self.path,
            dtype=dtype,
            mode=mode,
            offset=offset,
            shape=shape,
            order="F" if order == "F" else "C",
        )
        self.file.seek(offset + nbytes)
        return array

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if self.allowed is not None and full not in self.allowed:
            raise UnsafeLoadError(
                f"{self.name}: refused to load: it imports {full}, not in allowed_globals",
                (full,),
            )
        if (module, name) in _WRAPPERS:
            return _WRAPPERS[module, name]
        if module.startswith("numpy.core"):
            # numpy 2 renamed numpy.core to numpy._core (the old name warns on import)
            numpy = self.numpy()
            if hasattr(numpy, "_core"):
                module = "numpy._core" + module[len("numpy.core") :]
        return super().find_class(module, name)

    def load_build(self) -> None:
        super().load_build()  # type: ignore[misc]
        top = self.stack[-1]
        if isinstance(top, _WRAPPER_TYPES):
            self.stack[-1] = cast(Any, top).read(self)

    dispatch[pickle.BUILD[0]] = load_build  # type: ignore[assignment]


def load_legacy(
    file: IO[bytes],
    name: str,
    path: str | None,
    mmap_mode: str | None,
    allowed: frozenset[str] | None,
) -> Any:
    """Load a joblib-written file from ``file`` (positioned at its start)."""
    start = file.tell()
    head = file.read(8)
    file.seek(start)
    if not head:
        raise CorruptFileError(f"{name}: empty file")
    kind = detect(head)
    if kind is None and not head.startswith(b"\x80"):
        raise CorruptFileError(f"{name}: neither a forklift file nor a joblib file")
    if kind is not None:
        mmap_mode = None  # arrays inside a compressed stream cannot be mapped
    end = None  # an uncompressed file bounds the arrays it can hold
    if kind is None:
        end = file.seek(0, 2)
        file.seek(start)
    try:
        stream = open_stream(file, kind)
        if allowed is not None:
            context = JoblibContext(name, path, mmap_mode, end)
            value = decode_joblib(stream, context, allowed)[0]
        else:
            unpickler = _JoblibUnpickler(stream, name, path, mmap_mode, allowed)
            unpickler.file_size = end
            value = unpickler.load()
        # joblib's stream ends with its pickle: reading on makes the codec check its own
        # checksum (else a damaged stream whose first bytes still unpickle loads silently)
        if kind is not None and stream.read(1):
            raise CorruptFileError(f"{name}: damaged: data goes on after the pickle's end")
        return value
    except ForkliftError:
        raise
    except Exception as exc:
        raise CorruptFileError(
            f"{name}: cannot be read as a joblib file ({type(exc).__name__}: {exc})"
        ) from exc
