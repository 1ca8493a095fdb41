"""``inspect_file``: what a file would construct, found without executing it.

For forklift files the index (JSON) lists every out-of-band array (dtype, shape, order, size)
and the pickle stream is scanned opcode by opcode, tracking the real pickle stack, for the
globals it imports (:func:`forklift.persist.safe.scan_globals`). For joblib files the
compression is detected from the magic bytes and the stream is walked by forklift's safe
decoder with every global an inert stub (:mod:`forklift.persist.legacy_safe`): array bytes
are skipped and described, nothing from the file runs. Any failure is a forklift error.

Imports only :mod:`forklift.errors` and :mod:`forklift._support`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field, replace
from typing import IO, Any

from forklift.errors import CorruptFileError, ForkliftError
from forklift.persist import layout, legacy, legacy_safe, reader, safe, sections, stream_input

__all__ = ["ArrayInfo", "FileReport", "inspect_file", "printable"]


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
        """A few human-readable lines (what ``forklift inspect`` prints).

        Names come from the file: control characters in them are shown escaped, so a
        crafted name cannot move the cursor or erase the warning line.
        """
        names = [printable(name) for name in self.globals]
        lines = [
            f"{printable(self.name)}: {self.format} {self.version}, {self.size} bytes, "
            f"compression: {printable(self.compression or 'none')}",
            f"globals ({len(names)}): {', '.join(names) or '-'}",
        ]
        unsafe = self.unsafe_globals()
        if unsafe:
            lines.append(f"outside SAFE_GLOBALS: {', '.join(map(printable, unsafe))}")
        for array in self.arrays:
            shape = "x".join(str(n) for n in array.shape) or "()"
            lines.append(
                f"  {printable(array.type)} {printable(array.dtype)} shape {shape} "
                f"order {printable(array.order)}, {array.nbytes} bytes"
            )
        lines.extend(f"note: {printable(note)}" for note in self.notes)
        return "\n".join(lines)


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\x1b``, ``\\r``...)."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


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
        <folder>/settings.fkl: forklift 1.1, ... bytes, compression: none
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
    try:
        if head == layout.MAGIC:
            return _inspect_forklift(reader.Source(file, name))
        content = stream_input.open_content(file, name)  # a compressed forklift file
        if content is not None:
            size = file.seek(0, io.SEEK_END) - start
            return replace(_inspect_forklift(content[0]), compression=content[1], size=size)
    except ForkliftError:
        raise
    except Exception as exc:  # a crafted index entry (array shapes, sizes) of the wrong type
        raise CorruptFileError(f"{name}: damaged index ({type(exc).__name__}: {exc})") from None
    return _inspect_joblib(file, name, head)


def _inspect_forklift(source: reader.Source) -> FileReport:
    index = reader.read_index(source)
    compressor = reader.codec_of(index, source)
    chunks = sections.SectionReader(source, compressor, index.pickle.length)
    try:
        pickled = bytes(memoryview(chunks.read(index.pickle)).cast("B"))
    finally:
        chunks.close()
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


def _inspect_joblib(file: IO[bytes], name: str, head: bytes) -> FileReport:
    kind = legacy.detect(head)
    if kind is None and not head.startswith(b"\x80"):
        raise CorruptFileError(f"{name}: neither a forklift file nor a joblib file")
    start = file.tell()
    end = file.seek(0, 2)
    file.seek(start)
    context = legacy_safe.JoblibContext(name, None, None, end if kind is None else None)
    context.describe = True
    try:
        stream = legacy.open_stream(file, kind)
        _, seen = legacy_safe.decode_joblib(stream, context, None)
    except ForkliftError:
        raise
    except Exception as exc:
        raise CorruptFileError(
            f"{name}: cannot be read as a joblib file ({type(exc).__name__}: {exc})"
        ) from None
    return FileReport(
        name=name,
        format="joblib",
        version="numpy_pickle",
        compression=kind,
        size=end - start,
        globals=_unique(seen),
        arrays=tuple(ArrayInfo(*array) for array in context.arrays),
        notes=tuple(context.notes),
    )
