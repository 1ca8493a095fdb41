"""The constants and byte layout of forklift's file format (spec: ``docs/format.md``).

::

    offset 0    header, 64 bytes: magic, major/minor version, flags, zero padding
    offset 64   pickle section: the protocol-5 pickle stream, in chunks
                buffer sections: one per out-of-band buffer, each starting on a
                64-byte boundary (512 KiB for a large one in an uncompressed file,
                see :func:`buffer_alignment`), in chunks (raw chunks are contiguous,
                so an uncompressed buffer is one mappable run of bytes)
                index: UTF-8 JSON describing every section and chunk
    end - 32    trailer: index offset, index length, index CRC-32, end magic

Large sections (:func:`buffer_alignment`, the one home of the rule): an uncompressed buffer
of at least :data:`LARGE_SECTION` (32 MiB) starts on a :data:`LARGE_ALIGNMENT` (512 KiB)
boundary, counted from the dump's first byte; the others stay packed on 64 bytes (a dict of
12,500 small arrays does not grow). Linux (6.16+) caches ext4 files in large folios, as
large as a write's file offset allows: 1 MiB writes at 64-byte-aligned offsets get folios
of 4-512 KiB (about 9 per MiB), at 512 KiB-aligned ones two per MiB, fewer per-folio costs.
Measured (1 GB float64, forklift.dump to /tmp on ext4, 13 interleaved rounds, medians;
2026-12-06): 64-byte alignment 210 ms, 512 KiB 192 ms, 256 KiB 194, 2 MiB 191, 1 MiB 219;
after 2.5 s without allocations before each dump: 64 bytes 204 ms, 512 KiB 208, 256 KiB 205,
2 MiB 289 (176-585, bimodal). Rejected, 2 MiB (the PMD size) and 1 MiB: this machine is a
VM that hands free blocks of 2 MiB and more back to its host two seconds after they are
freed (``page_reporting_order=9``); folios of 1 MiB and more come from such blocks once the
smaller free blocks run out, and the host then faults every page back in (up to 2x the
dump's time). 512 KiB folios come from blocks the host never takes back. A gap costs at
most 512 KiB - 64 bytes in a section of 32 MiB or more; in a new file it is a hole.
Offsets count from the dump's start, so a dump's bytes never depend on where a file object
stands (one appended at an unaligned position only misses the gain).

Everything here is pure data and small pure functions: the writer and the reader share them.
Imports only :mod:`forklift.errors` and ``xxhash`` (a core dependency).
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from typing import Any, Protocol

import xxhash

__all__ = [
    "ALIGNMENT",
    "LARGE_ALIGNMENT",
    "LARGE_SECTION",
    "CHUNK_SIZE",
    "RAW_CHUNK_SIZE",
    "FLAG_SIZED",
    "FLAG_WRITABLE_MAPPED",
    "FORMAT_VERSION",
    "HEADER",
    "HEADER_SIZE",
    "INBAND_LIMIT",
    "MAGIC",
    "MAX_CHUNK_RAW",
    "TRAILER",
    "TRAILER_MAGIC",
    "CHECKSUMS",
    "WRITE_CHECKSUM",
    "Hasher",
    "buffer_alignment",
    "checksum",
    "hasher",
    "header_bytes",
    "padding",
    "sized_length",
]

MAGIC = b"\x89FKL\r\n\x1a\n"
TRAILER_MAGIC = b"FKLINDEX"
#: 1.1: sections may use the ``xxh3`` checksum (1.0 readers refuse such files as damaged).
FORMAT_VERSION = (1, 1)
HEADER = struct.Struct("<8sHHI48x")  # magic, major, minor, flags, zero padding
HEADER_SIZE = HEADER.size  # 64
FLAGS_OFFSET = 12
#: Header flag: the file was opened with a writable mmap_mode ("r+"/"w+"), so its buffers
#: may have been changed in place and their checksums no longer prove anything.
FLAG_WRITABLE_MAPPED = 1
#: Header flag: bytes 16-23 hold the file's total length (``SIZE_FIELD``). Written for file
#: objects, so a reader of a pipe or socket stops at the file's end (as joblib's load stops
#: at the pickle's end) and several files may follow each other in one stream.
FLAG_SIZED = 2
SIZE_FIELD = struct.Struct("<Q")
SIZE_OFFSET = 16
KNOWN_FLAGS = FLAG_WRITABLE_MAPPED | FLAG_SIZED
TRAILER = struct.Struct("<QQI4x8s")  # index offset, index length, index crc32, end magic
ALIGNMENT = 64
#: Uncompressed buffer sections of at least this many bytes start on a
#: :data:`LARGE_ALIGNMENT` boundary (:func:`buffer_alignment`). Also the size from which an
#: uncompressed dump to a regular file is written by offset (``positional.MIN_LENGTH``), so
#: a new file's gaps are holes, never written zeros.
LARGE_SECTION = 32 << 20
#: 512 KiB: see :func:`buffer_alignment` (2 MiB, the PMD size, measured worse here).
LARGE_ALIGNMENT = 512 << 10
#: Compressed sections are cut in chunks of this many raw bytes (compressed in parallel).
CHUNK_SIZE = 4 << 20
#: Uncompressed sections use larger chunks: each is one checksum and one index entry, and
#: fewer entries keep the index (parsed on every load, mmap loads included) small.
RAW_CHUNK_SIZE = 64 << 20
#: A reader refuses chunks claiming more raw bytes than this (crafted-file guard).
MAX_CHUNK_RAW = 1 << 30
#: Raw chunks are written, read and checksummed in pieces of this size, so the checksum
#: reads bytes still in the CPU cache from the copy that just moved them (L2 512 KiB and L3
#: 32 MiB here). Measured with xxh3, 256 MB, CPU time: dump 103 ms with 256 KiB pieces,
#: 66 ms with 1 MiB (with preallocation), 60 ms with 4 MiB (np.save: 50 ms); verified load
#: 62 / 59 / 61 ms. Fewer calls, same cache benefit.
PIECE_SIZE = 1 << 20
#: Buffers smaller than this stay inside the pickle stream (an aligned section costs more).
INBAND_LIMIT = 16 << 10
#: At most this many threads (de)compress; with 2 chunks in flight each, memory stays under
#: 2 * MAX_WORKERS * CHUNK_SIZE (128 MiB) however big the data and the machine.
MAX_WORKERS = 16
#: A compressed chunk is kept only if it is smaller than this fraction of the raw chunk.
KEEP_COMPRESSED_RATIO = 0.99

_MASK64 = (1 << 64) - 1

#: Section checksums a reader accepts, each with its largest value (the writer's layout pass
#: records that placeholder, so the index it measures is as long as any real one can be).
CHECKSUMS = {"xxh3": _MASK64, "sum64": _MASK64, "crc32": 0xFFFFFFFF}
#: The checksum the writer uses for every section. xxh3 (the ``xxhash`` package, a core
#: dependency) runs at memory speed without numpy (measured: 12.8 GB/s over 256 MB, like
#: sum64 with numpy, crc32 3.0 GB/s), releases the GIL, and, unlike sum64, catches swapped
#: words. ``sum64`` and ``crc32`` sections of older files still load.
WRITE_CHECKSUM = "xxh3"


def header_bytes(length: int = 0) -> bytes:
    """The 64-byte header of a file written now; ``length`` (total bytes), if known, is
    recorded with :data:`FLAG_SIZED`."""
    header = bytearray(HEADER.pack(MAGIC, *FORMAT_VERSION, FLAG_SIZED if length else 0))
    if length:
        SIZE_FIELD.pack_into(header, SIZE_OFFSET, length)
    return bytes(header)


def sized_length(header: bytes) -> int | None:
    """The total length a header records (:data:`FLAG_SIZED`), or None."""
    if len(header) < HEADER_SIZE or not header.startswith(MAGIC):
        return None
    flags = int.from_bytes(header[FLAGS_OFFSET : FLAGS_OFFSET + 4], "little")
    if not flags & FLAG_SIZED:
        return None
    return int(SIZE_FIELD.unpack_from(header, SIZE_OFFSET)[0])


def padding(position: int, alignment: int = ALIGNMENT) -> int:
    """Bytes needed after ``position`` to reach the next multiple of ``alignment``."""
    return -position % alignment


def buffer_alignment(length: int, *, compressed: bool) -> int:
    """The boundary a buffer section of ``length`` bytes starts on (a multiple of 64).

    :data:`LARGE_ALIGNMENT` for an uncompressed one of at least :data:`LARGE_SECTION` bytes
    (see the module docstring), :data:`ALIGNMENT` otherwise. Not in compressed files: their
    chunks are neither mapped nor written in long runs, and the content of a codec stream
    reaches the page cache only compressed (its gaps would be zeros to compress, for
    nothing). Not for the pickle section either: it follows the 64-byte header, and its
    time goes to pickling, not to copying.
    """
    return LARGE_ALIGNMENT if length >= LARGE_SECTION and not compressed else ALIGNMENT


def _sum64(data: memoryview) -> int:
    """Sum of the little-endian 64-bit words of ``data`` (tail zero-padded), modulo 2**64."""
    length = len(data)
    whole = length - length % 8
    total = 0
    if whole:
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            words = numpy.frombuffer(data, dtype="<u8", count=whole // 8)
            total = int(numpy.add.reduce(words, dtype=numpy.uint64))
        else:
            values = array("Q")
            values.frombytes(data[:whole])
            if sys.byteorder == "big":
                values.byteswap()
            total = sum(values)
    if whole != length:
        total += int.from_bytes(bytes(data[whole:]), "little")
    return total & _MASK64


def checksum(name: str, data: memoryview | bytes, running: int = 0) -> int:
    """Checksum ``data`` with the algorithm ``name`` (one of :data:`CHECKSUMS`).

    ``running`` (crc32 and sum64 only) continues a checksum over pieces:
    ``checksum(n, b, checksum(n, a))`` equals ``checksum(n, a + b)`` when ``len(a)`` is a
    multiple of 8; :func:`hasher` does that for every algorithm.
    """
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    if name == "xxh3":
        if running:
            raise ValueError("xxh3 cannot continue from a value: use hasher()")
        return int(xxhash.xxh3_64_intdigest(view))
    if name == "crc32":
        return zlib.crc32(view, running)
    if name == "sum64":
        return (_sum64(view) + running) & _MASK64
    raise ValueError(f"unknown checksum {name!r}")


class Hasher(Protocol):
    """A checksum fed in pieces (pieces but the last a multiple of 8 bytes long)."""

    def update(self, data: memoryview | bytes) -> None: ...

    def intdigest(self) -> int: ...


class _Running:
    """crc32 and sum64 as a :class:`Hasher`: their value is a running total."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._value = 0

    def update(self, data: memoryview | bytes) -> None:
        self._value = checksum(self._name, data, self._value)

    def intdigest(self) -> int:
        return self._value


def hasher(name: str) -> Hasher:
    """A new :class:`Hasher` for the checksum ``name``; ValueError if it is unknown."""
    if name == "xxh3":
        return xxhash.xxh3_64()
    if name not in CHECKSUMS:
        raise ValueError(f"unknown checksum {name!r}")
    return _Running(name)


def describe_array(meta: dict[str, Any]) -> str:
    """Human-readable one-line description of an index array entry."""
    shape = "x".join(str(n) for n in meta.get("shape", [])) or "scalar"
    return f"{meta.get('type', 'ndarray')} {meta.get('dtype')} {shape} ({meta.get('order')})"
