"""Reading forklift files: check the frame, read or map the sections, then unpickle.

Data flow::

    trailer -> index (CRC-32 checked, JSON) -> pickle section (read, checksummed)
            -> buffer sections: mmap_mode and uncompressed: slices of one np.memmap (no read)
                                otherwise: read chunk by chunk into one preallocated block;
                                worker threads checksum (and decompress) chunks meanwhile
            -> restricted or plain unpickling with the buffers

Every inconsistency (truncation, bad magic, checksum mismatch, impossible offsets) raises
:class:`~forklift.errors.CorruptFileError` naming the file, before anything is unpickled.

Imports only :mod:`forklift.errors` and :mod:`forklift._support`.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import json
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

from forklift._support.cpus import cpu_count
from forklift.errors import CorruptFileError, UnknownCompressorError, UnsupportedFormatError
from forklift.persist import layout, safe
from forklift.persist.compressors import Compressor, get_compressor

__all__ = ["FileIndex", "Section", "Source", "read_file", "read_index"]


class Source:
    """Random access to a binary file object, with offsets relative to where it started."""

    def __init__(self, file: IO[bytes], name: str) -> None:
        self.file = file
        self.name = name
        self.start = file.tell()
        self.size = file.seek(0, 2) - self.start
        self._position = -1  # where the file is, relative to start (-1: unknown)

    def corrupt(self, message: str) -> CorruptFileError:
        return CorruptFileError(f"{self.name}: {message}")

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise self.corrupt(
                f"truncated: needs bytes {offset}-{offset + length}, file has {self.size}"
            )
        self.file.seek(self.start + offset)
        self._position = -1
        data = self.file.read(length)
        if data is None or len(data) != length:
            raise self.corrupt("truncated while reading")
        return data

    def will_need(self, offset: int, length: int) -> None:
        """Ask the OS to start reading a region ahead (we then read it in small pieces)."""
        advise = getattr(os, "posix_fadvise", None)
        if advise is None or length < layout.CHUNK_SIZE:
            return
        # not a real file (BytesIO, pipe): nothing to prefetch
        with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
            advise(self.file.fileno(), self.start + offset, length, os.POSIX_FADV_WILLNEED)

    def readinto(self, offset: int, target: memoryview) -> None:
        length = target.nbytes
        if offset < 0 or offset + length > self.size:
            raise self.corrupt(
                f"truncated: needs bytes {offset}-{offset + length}, file has {self.size}"
            )
        if offset != self._position:  # sequential reads skip the seek
            self.file.seek(self.start + offset)
        self._position = -1
        done = 0
        while done < length:
            count = self.file.readinto(target[done:])  # type: ignore[attr-defined]
            if not count:
                raise self.corrupt("truncated while reading")
            done += count
        self._position = offset + length


@dataclass(frozen=True)
class Section:
    """One section of the file: its raw length, checksum algorithm and chunk table."""

    length: int
    checksum: str
    chunks: tuple[tuple[int, int, int, int, int], ...]  # offset, stored, raw, coded, sum
    array: dict[str, Any] | None = None
    shuffle: int = 0  # item size the compressed chunks were byte-shuffled by (0: none)

    def contiguous_raw_offset(self) -> int | None:
        """File offset of the section if it is stored raw in one run (mappable), else None."""
        if not self.chunks or self.shuffle:  # shuffled bytes must be unshuffled: not mappable
            return None
        position = self.chunks[0][0]
        for offset, stored, raw, coded, _ in self.chunks:
            if coded or offset != position or stored != raw:
                return None
            position += stored
        return self.chunks[0][0]


@dataclass(frozen=True)
class FileIndex:
    """The parsed index of a forklift file."""

    version: tuple[int, int]
    codec: str | None
    level: int
    protocol: int
    pickle: Section
    buffers: tuple[Section, ...]
    flags: int = 0


def _section(raw: Any, source: Source) -> Section:
    length = raw["length"]
    checksum = raw["checksum"]
    if checksum not in ("crc32", "sum64") or not isinstance(length, int):
        raise source.corrupt("bad section entry in the index")
    chunks = []
    total = 0
    size = source.size
    for entry in raw["chunks"]:
        offset, stored, raw_length, coded, check = entry
        if (
            type(offset) is not int
            or type(stored) is not int
            or type(raw_length) is not int
            or type(check) is not int
            or offset < layout.HEADER_SIZE
            or stored < 0
            or not 0 <= raw_length <= layout.MAX_CHUNK_RAW
            or offset + stored > size
            or coded not in (0, 1)
            or (not coded and stored != raw_length)
        ):
            raise source.corrupt(f"impossible chunk {entry!r} in the index")
        chunks.append((offset, stored, raw_length, coded, check))
        total += raw_length
    if total != length:
        raise source.corrupt("section chunks do not add up to its length")
    array = raw.get("array")
    shuffle = raw.get("shuffle", 0)
    if shuffle not in (0, 2, 4, 8, 16):
        raise source.corrupt("bad shuffle width in the index")
    return Section(
        length,
        checksum,
        tuple(chunks),
        array if isinstance(array, dict) else None,
        shuffle,
    )


def read_index(source: Source) -> FileIndex:
    """Check header and trailer, then parse the index; CorruptFileError on any mismatch."""
    if source.size < layout.HEADER_SIZE + layout.TRAILER.size:
        raise source.corrupt(f"truncated: {source.size} bytes is shorter than any forklift file")
    header = source.read(0, layout.HEADER_SIZE)
    magic, major, minor, flags = layout.HEADER.unpack(header)
    padding = header[24:] if flags & layout.FLAG_SIZED else header[16:]  # 16-23: its length
    if magic != layout.MAGIC or any(padding) or flags & ~layout.KNOWN_FLAGS:
        raise source.corrupt("damaged header")
    recorded = layout.sized_length(header)
    if recorded is not None and recorded != source.size:
        raise source.corrupt(
            f"truncated or damaged: {source.size} bytes, its header records {recorded}"
        )
    if major != layout.FORMAT_VERSION[0]:
        raise UnsupportedFormatError(
            f"{source.name}: written in forklift format {major}.{minor}; this forklift reads "
            f"format {layout.FORMAT_VERSION[0]}.x - upgrade forklift"
        )
    trailer_offset = source.size - layout.TRAILER.size
    offset, length, crc, end_magic = layout.TRAILER.unpack(
        source.read(trailer_offset, layout.TRAILER.size)
    )
    if end_magic != layout.TRAILER_MAGIC or offset + length != trailer_offset:
        raise source.corrupt("truncated or damaged: no valid index at the end of the file")
    if offset < layout.HEADER_SIZE:
        raise source.corrupt("damaged trailer")
    encoded = source.read(offset, length)
    if layout.checksum("crc32", encoded) != crc:
        raise source.corrupt("damaged index (checksum mismatch)")
    try:
        raw = json.loads(encoded.decode("utf-8"))
        version = tuple(raw["version"])
        codec = raw["codec"]
        if codec is not None and not isinstance(codec, str):
            raise TypeError("codec")
        pickle_section = _section(raw["pickle"], source)
        buffers = tuple(_section(entry, source) for entry in raw["buffers"])
        return FileIndex(
            (int(version[0]), int(version[1])),
            codec,
            int(raw["level"]),
            int(raw["pickle"].get("protocol", 5)),
            pickle_section,
            buffers,
            flags,
        )
    except CorruptFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise source.corrupt(f"damaged index ({type(exc).__name__}: {exc})") from None


def _allocate(length: int) -> Any:
    """An uninitialised writable block (numpy, when present, skips bytearray's zero fill)."""
    numpy = __import__("sys").modules.get("numpy")
    if numpy is None:
        try:
            import numpy
        except ImportError:
            return bytearray(length)
    return numpy.empty(length, dtype=numpy.uint8)


class _SectionReader:
    def __init__(self, source: Source, compressor: Compressor | None, total: int) -> None:
        self.verify_raw = True  # the pickle section is always verified
        self._source = source
        self._compressor = compressor
        self._workers = 1
        self._pool: ThreadPoolExecutor | None = None
        if compressor is not None and compressor.parallel and total > layout.CHUNK_SIZE:
            # cpu_count reads cgroup files: only when it matters
            self._workers = min(cpu_count(), layout.MAX_WORKERS)
            if self._workers > 1:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="forklift-load")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _check(self, name: str, data: memoryview | bytes, expected: int) -> None:
        if layout.checksum(name, data) != expected:
            raise self._source.corrupt("damaged data (checksum mismatch)")

    def _decode(
        self, name: str, stored: bytes, raw: int, check: int, target: memoryview, *, width: int
    ) -> None:
        self._check(name, stored, check)
        assert self._compressor is not None
        try:
            data = self._compressor.decompress(stored, raw)
        except (ValueError, OSError, EOFError, RuntimeError, MemoryError) as exc:
            raise self._source.corrupt(f"damaged compressed data ({exc})") from None
        except Exception as exc:  # codecs raise their own error types (lzma.LZMAError, ...)
            if type(exc).__module__ in (
                "zlib",
                "_lzma",
                "lzma",
                "_bz2",
                "zstd",
                "zstandard",
                "lz4",
                "lz4.block",
                "_block",
            ):
                raise self._source.corrupt(f"damaged compressed data ({exc})") from None
            raise
        if len(data) != raw:
            raise self._source.corrupt("damaged compressed data (wrong length)")
        if width and raw % width == 0:
            _unshuffle(data, width, target)
        else:
            target[:] = data

    def _read_raw(self, name: str, offset: int, target: memoryview, expected: int) -> None:
        """Read a raw chunk piece by piece, checksumming each piece while it is cache-hot."""
        if not self.verify_raw:
            self._source.readinto(offset, target)
            return
        check = 0
        for start in range(0, len(target), layout.PIECE_SIZE):
            piece = target[start : start + layout.PIECE_SIZE]
            self._source.readinto(offset + start, piece)
            check = layout.checksum(name, piece, check)
        if check != expected:
            raise self._source.corrupt("damaged data (checksum mismatch)")

    def read(self, section: Section) -> Any:
        if section.chunks:
            first = section.chunks[0][0]
            last = section.chunks[-1]
            self._source.will_need(first, last[0] + last[1] - first)
        block = _allocate(section.length)
        view = memoryview(block).cast("B")
        pending: collections.deque[Future[None]] = collections.deque()
        position = 0
        try:
            for offset, stored, raw, coded, check in section.chunks:
                target = view[position : position + raw]
                position += raw
                job: Callable[[], None]
                if coded:
                    if self._compressor is None:
                        raise self._source.corrupt("compressed chunk in an uncompressed file")
                    data = self._source.read(offset, stored)
                    job = functools.partial(
                        self._decode,
                        section.checksum,
                        data,
                        raw,
                        check,
                        target,
                        width=section.shuffle,
                    )
                else:
                    self._read_raw(section.checksum, offset, target, check)
                    if section.shuffle and raw % section.shuffle == 0:
                        _unshuffle(bytes(target), section.shuffle, target)  # see streams.py
                    continue
                if self._pool is None:
                    job()
                    continue
                pending.append(self._pool.submit(job))
                if len(pending) >= 2 * self._workers:
                    pending.popleft().result()
            while pending:
                pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
        return block


def codec_of(index: FileIndex, source: Source) -> Compressor | None:
    """The compressor a file names; UnsupportedFormatError if it is not registered here."""
    if index.codec is None:
        return None
    try:
        return get_compressor(index.codec)
    except UnknownCompressorError as exc:
        raise UnsupportedFormatError(
            f"{source.name}: {exc}; register it to read this file"
        ) from None


def _unshuffle(data: bytes, width: int, target: memoryview) -> None:
    """Undo the writer's byte shuffle: ``data`` holds byte planes, ``target`` gets items."""
    import numpy

    planes = numpy.frombuffer(data, dtype=numpy.uint8).reshape(width, -1)
    numpy.copyto(numpy.frombuffer(target, dtype=numpy.uint8).reshape(-1, width), planes.T)


def _bind(function: Callable[..., None], *args: Any) -> Callable[[], None]:
    return lambda: function(*args)


def _map_buffers(path: str, mode: str, sections: tuple[Section, ...]) -> list[Any]:
    import numpy

    whole: Any = numpy.memmap(path, dtype="u1", mode="r+" if mode == "w+" else mode)  # type: ignore[call-overload]
    return _slice_buffers(whole, sections)


def _slice_buffers(whole: Any, sections: tuple[Section, ...]) -> list[Any]:
    """Views of ``whole`` (the file mapped, or decompressed in memory) for each section."""
    mapped: list[Any] = []
    for section in sections:
        offset = section.contiguous_raw_offset()
        if offset is None:
            return []  # not mappable after all (chunks stored apart): caller reads instead
        piece = whole[offset : offset + section.length]
        if hasattr(piece, "offset"):  # np.memmap: where the array starts in the file
            piece.offset = offset
        mapped.append(piece)
    return mapped


def _mark_writable_mapped(path: str, flags: int) -> None:
    """Record in the header that buffers may now change in place (see FLAG_WRITABLE_MAPPED)."""
    if flags & layout.FLAG_WRITABLE_MAPPED:
        return
    with open(path, "r+b") as handle:
        handle.seek(layout.FLAGS_OFFSET)
        handle.write((flags | layout.FLAG_WRITABLE_MAPPED).to_bytes(4, "little"))


def read_file(
    source: Source,
    index: FileIndex,
    *,
    path: str | None,
    mmap_mode: str | None,
    allowed: frozenset[str] | None,
    verify: bool = False,
    memory: Any = None,
) -> Any:
    """Load the value stored in the forklift file behind ``source`` (``index``: its index).

    ``verify=True`` also checks the checksums of raw (uncompressed) buffers; the frame, the
    index, the pickle stream and compressed chunks are always checked. ``memory``: the
    whole file as a writable uint8 block (a decompressed stream): raw buffers become views
    of it instead of copies.
    """
    compressor = codec_of(index, source)
    total = index.pickle.length + sum(section.length for section in index.buffers)
    sections = _SectionReader(source, compressor, total)
    try:
        pickled = sections.read(index.pickle)
        if allowed is not None:
            safe.check_stream(bytes(pickled), allowed, source.name)
        buffers: list[Any] = []
        if memory is not None:
            buffers = _slice_buffers(memory, index.buffers)
        elif mmap_mode is not None and path is not None and index.codec is None and index.buffers:
            buffers = _map_buffers(path, mmap_mode, index.buffers)
            if buffers and mmap_mode in ("r+", "w+"):
                _mark_writable_mapped(path, index.flags)
        if not buffers:
            # After a writable mapping the stored checksums of raw buffers may be stale.
            sections.verify_raw = verify and not index.flags & layout.FLAG_WRITABLE_MAPPED
            buffers = [sections.read(section) for section in index.buffers]
    finally:
        sections.close()
    return safe.unpickle(pickled, buffers, allowed, source.name)
