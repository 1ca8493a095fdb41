"""``inspect_file``: what a file would construct, found without executing it.

For forklift files the index (JSON) lists every out-of-band array (dtype, shape, order, size)
and the pickle stream is scanned opcode by opcode for the globals it imports. For joblib
files the compression is detected from the magic bytes and the readable pickle stream is
scanned the same way (array data interleaved in joblib's stream ends the scan early, which
the report says).

Imports only :mod:`forklift.errors` and :mod:`forklift._support`.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass, field, replace
from typing import IO, Any

from forklift.errors import CorruptFileError
from forklift.persist import layout, legacy, reader, safe, stream_input

__all__ = ["ArrayInfo", "FileReport", "inspect_file"]


@dataclass(frozen=True)
class ArrayInfo:
    """An array stored out of band: its class name, dtype, shape, memory order and bytes."""

    type: str
    dtype: str
    shape: tuple[int, ...]
    order: str
    nbytes: int


@dataclass(frozen=True)
class FileReport:
    """What :func:`inspect_file` found. ``globals`` are ``module.qualname`` strings.

    Examples:
        >>> import io, uuid
        >>> from forklift import dump, inspect_file
        >>> buffer = io.BytesIO()
        >>> _ = dump({"id": uuid.UUID(int=7), "values": [1.0, 2.0]}, buffer, compress=3)
        >>> report = inspect_file(io.BytesIO(buffer.getvalue()))
        >>> report.format, report.compression, report.globals
        ('forklift', 'zlib level 3', ('uuid.UUID',))
        >>> report.unsafe_globals()          # what load(..., allowed_globals=SAFE_GLOBALS) refuses
        ('uuid.UUID',)
    """

    name: str
    format: str
    version: str
    compression: str | None
    size: int
    globals: tuple[str, ...]
    arrays: tuple[ArrayInfo, ...] = ()
    buffers: int = 0
    notes: tuple[str, ...] = field(default=())

    def unsafe_globals(self, allowed: frozenset[str] = safe.SAFE_GLOBALS) -> tuple[str, ...]:
        """The globals a load with ``allowed_globals=allowed`` would refuse."""
        return tuple(name for name in self.globals if name not in allowed)

    def summary(self) -> str:
        """A few human-readable lines (what ``forklift inspect`` prints)."""
        lines = [
            f"{self.name}: {self.format} {self.version}, {self.size} bytes, "
            f"compression: {self.compression or 'none'}",
            f"globals ({len(self.globals)}): {', '.join(self.globals) or '-'}",
        ]
        unsafe = self.unsafe_globals()
        if unsafe:
            lines.append(f"outside SAFE_GLOBALS: {', '.join(unsafe)}")
        for array in self.arrays:
            shape = "x".join(str(n) for n in array.shape) or "()"
            lines.append(
                f"  {array.type} {array.dtype} shape {shape} order {array.order}, "
                f"{array.nbytes} bytes"
            )
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


def inspect_file(filename: str | os.PathLike[str] | IO[bytes]) -> FileReport:
    """Describe the file ``filename`` (path or binary file object) without unpickling it.

    Nothing in the file is executed: the index is read and the pickle stream scanned, so this
    is safe on files you do not trust (``forklift inspect FILE`` prints the same report).

    Examples:
        >>> import os, tempfile
        >>> from forklift import dump, inspect_file
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "settings.fkl")
        ...     _ = dump({"threshold": 0.5, "callback": print}, path)
        ...     print(inspect_file(path).summary().replace(folder, "<folder>"))
        <folder>/settings.fkl: forklift 1.0, ... bytes, compression: none
        globals (1): builtins.print
        outside SAFE_GLOBALS: builtins.print
    """
    if isinstance(filename, str | os.PathLike):
        name = os.fspath(filename)
        with open(name, "rb") as handle:
            return _inspect(handle, str(name))
    label = getattr(filename, "name", None)
    file: IO[bytes] = filename
    if not file.seekable():
        file = io.BytesIO(file.read())
    return _inspect(file, label if isinstance(label, str) else "<file object>")


def _unique(names: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _inspect(file: IO[bytes], name: str) -> FileReport:
    start = file.tell()
    head = file.read(len(layout.MAGIC))
    file.seek(start)
    if head == layout.MAGIC:
        return _inspect_forklift(reader.Source(file, name))
    content = stream_input.open_content(file, name)  # a compressed forklift file
    if content is not None:
        size = file.seek(0, io.SEEK_END) - start
        return replace(_inspect_forklift(content[0]), compression=content[1], size=size)
    return _inspect_joblib(file, name, head)


def _inspect_forklift(source: reader.Source) -> FileReport:
    index = reader.read_index(source)
    compressor = reader.codec_of(index, source)
    sections = reader._SectionReader(source, compressor, index.pickle.length)
    try:
        pickled = bytes(memoryview(sections.read(index.pickle)).cast("B"))
    finally:
        sections.close()
    arrays = []
    for section in index.buffers:
        meta: dict[str, Any] | None = section.array
        if meta is not None:
            arrays.append(
                ArrayInfo(
                    str(meta.get("type")),
                    str(meta.get("dtype")),
                    tuple(int(n) for n in meta.get("shape", ())),
                    str(meta.get("order")),
                    section.length,
                )
            )
    codec = f"{index.codec} level {index.level}" if index.codec is not None else None
    return FileReport(
        name=source.name,
        format="forklift",
        version=f"{index.version[0]}.{index.version[1]}",
        compression=codec,
        size=source.size,
        globals=_unique(safe.scan_globals(pickled, source.name)),
        arrays=tuple(arrays),
        buffers=len(index.buffers),
    )


class _Stub:
    """What a global outside SAFE_GLOBALS becomes while inspecting: inert, accepts anything."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
        return _Stub()

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def add(self, item: Any) -> None:
        pass


class _InspectingUnpickler(legacy._JoblibUnpickler):
    """Walks a joblib stream: safe globals resolve for real, others become stubs, array data
    is skipped and described."""

    dispatch = legacy._JoblibUnpickler.dispatch.copy()

    def __init__(self, file: IO[bytes], name: str, report: _Findings) -> None:
        super().__init__(file, name, None, None, None)
        self.report = report

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        self.report.globals.append(full)
        if (module, name) in legacy._WRAPPERS or full in safe.SAFE_GLOBALS:
            return super().find_class(module, name)
        return type(name, (_Stub,), {"__module__": "forklift.inspect.stub"})

    def load_build(self) -> None:
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        top = self.stack[-1]
        if isinstance(top, legacy._ArrayWrapper):
            self._skip_array(top.__dict__)
            self.stack[-1] = None
        elif isinstance(top, legacy._NDArrayWrapper | legacy._ZNDArrayWrapper):
            self.report.notes.append(f"array in companion file {top.__dict__.get('filename')}")
            self.stack[-1] = None

    def _skip_array(self, state: dict[str, Any]) -> None:
        numpy = self.numpy()
        dtype = numpy.dtype(state["dtype"])
        shape = tuple(int(n) for n in state["shape"])
        subclass = state.get("subclass")
        kind = getattr(subclass, "__name__", "ndarray")
        if dtype.hasobject:
            _InspectingUnpickler(self.file, self.name, self.report).load()
            nbytes = 0
        else:
            if state.get("numpy_array_alignment_bytes") is not None:
                self.read(self.read(1)[0])
            nbytes = dtype.itemsize * int(numpy.prod(shape, dtype=numpy.int64))
            remaining = nbytes
            while remaining:
                piece = self.read(min(remaining, 1 << 22))
                if not piece:
                    raise EOFError("file ended inside an array")
                remaining -= len(piece)
        self.report.arrays.append(
            ArrayInfo(kind, dtype.str, shape, str(state.get("order", "C")), nbytes)
        )

    dispatch[pickle.BUILD[0]] = load_build  # type: ignore[assignment]


@dataclass
class _Findings:
    globals: list[str] = field(default_factory=list)
    arrays: list[ArrayInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _inspect_joblib(file: IO[bytes], name: str, head: bytes) -> FileReport:
    kind = legacy.detect(head)
    if kind is None and not head.startswith(b"\x80"):
        raise CorruptFileError(f"{name}: neither a forklift file nor a joblib file")
    start = file.tell()
    size = file.seek(0, 2) - start
    file.seek(start)
    findings = _Findings()
    try:
        stream = legacy.open_stream(file, kind)
        _InspectingUnpickler(stream, name, findings).load()
    except Exception as exc:
        raise CorruptFileError(
            f"{name}: cannot be read as a joblib file ({type(exc).__name__}: {exc})"
        ) from exc
    return FileReport(
        name=name,
        format="joblib",
        version="numpy_pickle",
        compression=kind,
        size=size,
        globals=_unique(findings.globals),
        arrays=tuple(findings.arrays),
        notes=tuple(findings.notes),
    )
