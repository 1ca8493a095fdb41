"""Reading forklift files: check the frame, read or map the sections, then unpickle.

Data flow::

    trailer -> index (CRC-32 checked, JSON) -> pickle section (read, checksummed)
            -> buffer sections: mmap_mode and uncompressed: slices of one np.memmap (no read)
                                otherwise: read chunk by chunk into one block
                                (persist/sections.py: checksums, bounded decompression)
            -> plain unpickling with the buffers, or forklift's safe decoder
               (``allowed_globals``), which reads each buffer when the stream asks for it

Every inconsistency (truncation, bad magic, checksum mismatch, impossible offsets) raises
:class:`~forklift.errors.CorruptFileError` naming the file, before anything is unpickled.

Imports only :mod:`forklift.errors` and :mod:`forklift._support`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from forklift.errors import (
    CorruptFileError,
    UnknownCompressorError,
    UnsupportedFormatError,
)
from forklift.persist import layout, safe
from forklift.persist.compressors import Compressor, get_compressor
from forklift.persist.sections import SectionReader

__all__ = ["MAX_CODED_CHUNK_RAW", "FileIndex", "Section", "Source", "read_file", "read_index"]

#: A compressed chunk may declare at most this many raw bytes (the writer cuts compressed
#: sections in 4 MiB chunks). A raw chunk is bounded by the file's size; a compressed one
#: could claim anything, so this explicit limit bounds what one chunk may allocate, and each
#: chunk is decompressed with its declared length as the output limit (no bomb expands past
#: it). A section's block is allocated untouched: its pages cost memory only as chunks that
#: really decompress fill them, so a false claim fails at its first chunk.
MAX_CODED_CHUNK_RAW = 64 << 20


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


class Section(NamedTuple):
    """One section of the file: its raw length, checksum algorithm and chunk table.

    A named tuple, not a frozen dataclass: an index may list tens of thousands of sections
    and a frozen dataclass's ``__init__`` costs 3 us each (measured: 12,500 arrays).
    """

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
    if checksum not in layout.CHECKSUMS or type(length) is not int:
        raise source.corrupt("bad section entry in the index")
    chunks = []
    total = 0
    size = source.size
    for entry in raw["chunks"]:
        offset, stored, raw_length, coded, check = entry
        # every field an exact int (a bool or a float is damage); one set instead of four
        # type() calls: the loop runs once per chunk, tens of thousands of times
        if (
            {type(offset), type(stored), type(raw_length), type(check)} != _INT
            or offset < layout.HEADER_SIZE
            or stored < 0
            or not 0 <= raw_length <= (MAX_CODED_CHUNK_RAW if coded else layout.MAX_CHUNK_RAW)
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
    if shuffle not in (0, 2, 4, 8, 16) or type(shuffle) is not int:
        raise source.corrupt("bad shuffle width in the index")
    return Section(
        length,
        checksum,
        tuple(chunks),
        array if isinstance(array, dict) else None,
        shuffle,
    )


_INT = {int}


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
    except (
        KeyError,
        TypeError,
        ValueError,
        IndexError,
        AttributeError,
        OverflowError,
        RecursionError,  # JSON nested thousands deep
    ) as exc:
        raise source.corrupt(f"damaged index ({type(exc).__name__}: {exc})") from None


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


def _verify_raw_buffers(index: FileIndex, verify: bool, source: Source) -> bool:
    """Whether raw buffer chunks get their checksum checked while read.

    In a compressed file always: a raw chunk there is incompressible data stored as is, and
    its CRC costs little next to decompressing the others. In an uncompressed file with
    ``verify=True``, whatever the header's "writable mapped" flag says: a flag is one bit a
    damaged header can set, so it never silences a check; it only explains a mismatch (see
    :func:`read_file`). Writable mapping is impossible for a compressed file, so the flag set
    on one is damage.
    """
    if index.codec is not None:
        if index.flags & layout.FLAG_WRITABLE_MAPPED:
            raise source.corrupt("damaged header (writable-mapped flag on a compressed file)")
        return True
    return verify


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
    sections = SectionReader(source, compressor, total)
    try:
        pickled = sections.read(index.pickle)
        buffers: list[Any] = []
        if memory is not None:
            buffers = _slice_buffers(memory, index.buffers)
        elif mmap_mode is not None and path is not None and index.codec is None and index.buffers:
            buffers = _map_buffers(path, mmap_mode, index.buffers)
            if buffers and mmap_mode in ("r+", "w+"):
                _mark_writable_mapped(path, index.flags)
        if not buffers:
            sections.verify_raw = _verify_raw_buffers(index, verify, source)
            if allowed is not None:
                # read each buffer when the stream asks for it: a refused file is refused
                # before its large sections are read
                wanted = (sections.read(section) for section in index.buffers)
                return safe.unpickle(pickled, wanted, allowed, source.name)
            buffers = sections.read_all(index.buffers)
    except CorruptFileError as error:
        if index.flags & layout.FLAG_WRITABLE_MAPPED and "checksum" in str(error):
            raise source.corrupt(
                "array data does not match its checksums; the file was once loaded with "
                "mmap_mode='r+' or 'w+', which changes arrays in place and leaves their "
                "checksums stale: if that is what happened, load it with verify=False "
                "(or dump it again to refresh them)"
            ) from error
        raise
    finally:
        sections.close()
    return safe.unpickle(pickled, buffers, allowed, source.name)
