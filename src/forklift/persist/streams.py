"""Codec streams: the bytes of a compressed file as ``gzip``, ``bzip2``, ``xz``... see them.

A compressed forklift file is one standard stream of its codec whose decompressed content is
an uncompressed forklift file, so ``gzip -d``/``xz -d``/``zstd -d``... and Python's own
``gzip``/``bz2``/``lzma`` modules read it, and the decompressed file loads with ``load``.
To compress on every core, the content is cut in chunks compressed independently and
written one after another, in the way each format allows:

========  ==================================================================================
codec     one chunk becomes
========  ==================================================================================
gzip      one gzip member; its FEXTRA field (subfield ``FK``) holds the member's size and raw
          size, so a reader can find every member without decompressing (as BGZF does)
zlib      sync-flushed raw DEFLATE blocks; the file is ONE zlib stream (zlib has no
          concatenation): header, blocks, a final empty block, the combined Adler-32
bz2, xz   one complete stream (both formats define concatenated streams as one file)
lz4, zstd a skippable frame (``FK`` sizes, ignored by every decoder) then one frame
lzma      ``.lzma`` (LZMA-alone) cannot be concatenated: one stream, compressed in order
========  ==================================================================================

Rejected: forklift's own container with compressed chunks inside (what files written
before forklift 0.x used, still read by :mod:`.reader`): no standard tool could open it.

Imports only :mod:`forklift.persist.compressors` (for the optional lz4 and zstandard).
"""

from __future__ import annotations

import bz2
import lzma
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import xxhash

from forklift.persist.compressors import import_extra

__all__ = [
    "DETECT_LENGTH",
    "Member",
    "STREAM_CODECS",
    "StreamCodec",
    "adler32_combine",
    "decode_piece",
    "detect",
    "member_decompressor",
    "member_table",
    "split_pieces",
]

_ADLER_BASE = 65521
#: A skippable frame (zstd and lz4 share the range 0x184D2A50-5F) carrying ``FK`` sizes.
#: magic, payload size, b"FKLM", member size, raw size, byte-shuffle width of the content
_SKIPPABLE = struct.Struct("<II4sIII")
#: ... and, in a payload of 24 bytes (lz4 members), the xxh3-64 of the frame that follows.
_SUMMED = struct.Struct("<Q")
_SKIPPABLE_MAGIC = 0x184D2A5F
#: magic+CM+FLG, mtime, XFL, OS, XLEN, then subfield FK: member size, raw size, shuffle width
_GZIP_HEADER = struct.Struct("<4sIBBH2sHIII")
_GZIP_FEXTRA = 0x04


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """Adler-32 of ``a + b`` from the Adler-32 of ``a``, of ``b`` and ``len(b)``.

    Adler-32 is ``A = 1 + sum(bytes)`` and ``B = sum of A after each byte`` (mod 65521),
    so appending ``m`` bytes adds ``A_b - 1`` to ``A`` and ``B_b + m * (A_a - 1)`` to ``B``.
    """
    a1, b1 = first & 0xFFFF, first >> 16
    a2, b2 = second & 0xFFFF, second >> 16
    a = (a1 + a2 - 1) % _ADLER_BASE
    b = (b1 + b2 + second_length * (a1 - 1)) % _ADLER_BASE
    return (b << 16) | a


@dataclass(frozen=True)
class StreamCodec:
    """How one codec frames independently compressed chunks as one standard stream.

    ``member(data, level, width)`` runs on worker threads (``width``: the item size the
    chunk's content is byte-shuffled by, recorded where the format has room, so a reader
    can unshuffle while it copies) and returns the chunk's bytes and a
    value the stream's footer needs (zlib's Adler-32; 0 otherwise); ``combine`` folds those
    values in file order and ``footer`` turns the result into the stream's last bytes.
    ``shuffle``: whether numeric chunks are byte-shuffled for this codec.
    """

    name: str
    member: Callable[[memoryview, int, int], tuple[bytes, int]]
    concatenable: bool = True
    header: Callable[[int], bytes] = lambda level: b""
    combine: Callable[[int, int, int], int] = lambda total, value, length: 0
    footer: Callable[[int], bytes] = lambda total: b""
    shuffle: bool = True


def _deflate(data: memoryview, level: int) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH)


def _gzip_member(data: memoryview, level: int, width: int) -> tuple[bytes, int]:
    packer = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = packer.compress(data) + packer.flush()
    size = _GZIP_HEADER.size + len(body) + 8
    extra_flags = 2 if level >= 9 else 4 if level <= 1 else 0
    header = _GZIP_HEADER.pack(
        b"\x1f\x8b\x08" + bytes([_GZIP_FEXTRA]),
        0,
        extra_flags,
        255,
        16,
        b"FK",
        12,
        size,
        len(data),
        width,
    )
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return header + body + trailer, 0


def _zlib_member(data: memoryview, level: int, width: int) -> tuple[bytes, int]:
    return _deflate(data, level), zlib.adler32(data)


def _zlib_header(level: int) -> bytes:
    return zlib.compress(b"", level)[:2]  # CMF/FLG as zlib itself writes them for `level`


def _zlib_footer(total: int) -> bytes:
    # A final, empty fixed-Huffman block, then the Adler-32 of all the content.
    return b"\x03\x00" + struct.pack(">I", total)


def _skippable(frame: bytes, raw_length: int, width: int, check: int | None = None) -> bytes:
    if check is None:
        return _SKIPPABLE.pack(_SKIPPABLE_MAGIC, 16, b"FKLM", len(frame), raw_length, width) + frame
    head = _SKIPPABLE.pack(_SKIPPABLE_MAGIC, 24, b"FKLM", len(frame), raw_length, width)
    return head + _SUMMED.pack(check) + frame


def _lz4_member(data: memoryview, level: int, width: int) -> tuple[bytes, int]:
    frame = import_extra("lz4.frame", "lz4")
    # The frame's bytes are checked by the xxh3 in the skippable frame before decoding, not
    # by lz4's own checksums: python-lz4's cost 9 ms per 4 MiB to decode (random data; 0.5
    # ms without them) and 20 ms to encode (1.5 ms), xxh3 0.1 ms. Checking the compressed
    # bytes catches every flip, also those lz4 decodes to the same content (a checksum of
    # the content alone misses them). The frame stays a valid lz4 frame (``lz4 -t``
    # accepts it); only forklift checks it.
    packed = frame.compress(
        data,
        compression_level=level,
        content_checksum=False,
        block_checksum=False,
        store_size=True,
    )
    check = xxhash.xxh3_64_intdigest(packed)
    return _skippable(bytes(packed), len(data), width, check), 0


_ZSTD_LOCAL = threading.local()


def _zstd_member(data: memoryview, level: int, width: int) -> tuple[bytes, int]:
    cache: dict[int, Any] = _ZSTD_LOCAL.__dict__.setdefault("compressors", {})
    if level not in cache:  # zstandard's compressors must not be shared between threads
        zstandard = import_extra("zstandard", "zstd")
        cache[level] = zstandard.ZstdCompressor(
            level=level, write_checksum=True, write_content_size=True
        )
    return _skippable(bytes(cache[level].compress(data)), len(data), width), 0


STREAM_CODECS: dict[str, StreamCodec] = {
    "gzip": StreamCodec("gzip", _gzip_member),
    "zlib": StreamCodec(
        "zlib", _zlib_member, header=_zlib_header, combine=adler32_combine, footer=_zlib_footer
    ),
    "bz2": StreamCodec("bz2", lambda data, level, width: (bz2.compress(data, max(1, level)), 0)),
    "xz": StreamCodec(
        "xz", lambda data, level, width: (lzma.compress(data, lzma.FORMAT_XZ, preset=level), 0)
    ),
    "lzma": StreamCodec("lzma", lambda data, level, width: (b"", 0), concatenable=False),
    # lz4 is chosen for speed, and byte-shuffled chunks cost it speed at both ends for little
    # gain (measured, 4 MiB of float64, lz4 level 1: smooth data 2.14 MB shuffled vs 2.34 MB
    # not, decoding 8.5 ms + 3.0 ms unshuffle vs 3.9 ms; random data 12% smaller, decoding
    # 10.1 ms + 3.0 ms vs 3.9 ms): its chunks are stored as they are.
    "lz4": StreamCodec("lz4", _lz4_member, shuffle=False),
    "zstd": StreamCodec("zstd", _zstd_member),
}


#: How many first bytes of a file :func:`detect` needs.
DETECT_LENGTH = 64


# The first bytes of each codec's stream (none is a prefix of another, so order is free).
_MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
)


def detect(head: bytes) -> str | None:
    """The codec whose stream ``head`` (the first :data:`DETECT_LENGTH` bytes of a file)
    starts, or None."""
    for magic, codec in _MAGICS:
        if head.startswith(magic):
            return codec
    if head[:4] == _SKIPPABLE_MAGIC.to_bytes(4, "little") and head[8:12] == b"FKLM":
        skip = 8 + int.from_bytes(head[4:8], "little")  # the frame's header and payload
        if skip in (24, 32) and len(head) >= skip + 4:
            return detect(head[skip:])
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return "zlib"
    return None


def member_decompressor(codec: str) -> Any:
    """A new incremental decompressor for one member/stream/frame of ``codec``
    (``decompress``, ``eof``, ``unused_data``, as the standard library's)."""
    if codec == "gzip":
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if codec == "zlib":
        return zlib.decompressobj(zlib.MAX_WBITS)
    if codec == "bz2":
        return bz2.BZ2Decompressor()
    if codec == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_XZ)
    if codec == "lzma":
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE)
    if codec == "lz4":
        return import_extra("lz4.frame", "lz4").LZ4FrameDecompressor()
    return import_extra("zstandard", "zstd").ZstdDecompressor().decompressobj()


#: One member as forklift's writer recorded it: offset (from the stream's start), length,
#: raw length, byte-shuffle width, and the xxh3 of its bytes (None where not recorded).
Member = tuple[int, int, int, int, int | None]


def member_table(file: IO[bytes], start: int, size: int, codec: str) -> list[Member] | None:
    """Every member of the ``codec`` stream, as forklift recorded it (see :data:`Member`).

    Offsets count from ``start`` (where the stream begins in ``file``; ``size`` bytes).
    None when the stream has no such sizes (written by another tool, or a codec without a
    place for them): the caller then decompresses it in order.
    """
    if codec not in ("gzip", "lz4", "zstd"):
        return None
    table: list[Member] = []
    position = 0
    while position < size:
        file.seek(start + position)
        if codec == "gzip":
            head = file.read(_GZIP_HEADER.size)
            if len(head) != _GZIP_HEADER.size:
                return None
            magic, _, _, _, xlen, subfield, length, member, raw, width = _GZIP_HEADER.unpack(head)
            if magic != b"\x1f\x8b\x08\x04" or (xlen, subfield, length) != (16, b"FK", 12):
                return None
            table.append((position, member, raw, width, None))
        else:
            head = file.read(_SKIPPABLE.size)
            if len(head) != _SKIPPABLE.size:
                return None
            magic, payload, mark, member, raw, width = _SKIPPABLE.unpack(head)
            if magic != _SKIPPABLE_MAGIC or mark != b"FKLM" or payload not in (16, 24):
                return None
            check = None
            if payload == 24:
                summed = file.read(_SUMMED.size)
                if len(summed) != _SUMMED.size:
                    return None
                (check,) = _SUMMED.unpack(summed)
            frame = 8 + payload  # the skippable frame's header and payload
            table.append((position + frame, member, raw, width, check))
            member += frame
        if member <= 0:
            return None
        position += member
    return table if position == size else None


def decompress_member(codec: str, data: bytes, raw_length: int, check: int | None = None) -> bytes:
    """Decompress one member listed by :func:`member_table` (checks its own checksum, and
    first the xxh3 ``check`` of its bytes when the table recorded one).

    Never produces more than ``raw_length + 1`` bytes: a crafted member cannot expand past
    the size recorded for it (no decompression bomb through this path).
    """
    if check is not None and xxhash.xxh3_64_intdigest(data) != check:
        raise ValueError("a member's bytes do not match their recorded checksum")
    if codec == "zstd":
        zstandard = import_extra("zstandard", "zstd")
        # max_output_size is ignored when the frame states its content size: check that first
        if zstandard.frame_content_size(data) != raw_length:
            raise ValueError("a zstd frame's content size differs from its recorded size")
        result = zstandard.ZstdDecompressor().decompress(data, max_output_size=raw_length)
        complete = True
    else:
        decompressor = member_decompressor(codec)
        if codec == "gzip":
            result = decompressor.decompress(data, raw_length + 1)
        else:
            result = decompressor.decompress(data, max_length=raw_length + 1)
        complete = decompressor.eof and not decompressor.unused_data
    if len(result) != raw_length or not complete:
        raise ValueError(f"a member does not hold the {raw_length} bytes its header records")
    return bytes(result)


#: Where an independently decodable piece may start, per codec without recorded sizes: the
#: bytes that end one of the writer's chunks (zlib's sync flush: an empty stored block) or
#: start one (a bzip2 stream header and its first block's magic; an xz stream header).
_PIECE_MARKS = {"zlib": b"\x00\x00\xff\xff", "bz2": b"1AY&SY", "xz": b"\xfd7zXZ\x00"}


def split_pieces(data: memoryview, codec: str) -> list[memoryview] | None:
    """Cut a whole ``codec`` stream in memory where independent pieces may start.

    Candidates are found by their marker bytes, which can also occur by chance inside
    compressed data: the caller must decode each piece completely and check the result
    (:func:`decode_piece`, and zlib's Adler-32 over all), and fall back to decoding in order
    when anything does not fit. None when there is nothing to split.
    """
    mark = _PIECE_MARKS.get(codec)
    if mark is None:
        return None
    raw = data.obj if isinstance(data.obj, bytes) else bytes(data)
    if codec == "zlib":
        body_start, body_end = 2, len(raw) - 4  # zlib header, Adler-32 trailer
    else:
        body_start, body_end = 0, len(raw)
    starts = [body_start]
    position = raw.find(mark, body_start + 1, body_end)
    while position != -1:
        start = position + len(mark) if codec == "zlib" else position
        if codec == "bz2":
            start -= 4  # "BZh" and the level digit come before the block magic
            if raw[start : start + 3] != b"BZh":
                start = -1
        if body_start < start < body_end and start != starts[-1]:
            starts.append(start)
        position = raw.find(mark, position + 1, body_end)
    if len(starts) < 2:
        return None
    ends = [*starts[1:], body_end]
    return [data[start:end] for start, end in zip(starts, ends, strict=True)]


def decode_piece(codec: str, piece: memoryview, last: bool, limit: int) -> tuple[bytes, int]:
    """Decode one piece of :func:`split_pieces` completely, to at most ``limit`` bytes;
    returns the bytes and their Adler-32 (zlib; 0 otherwise). ValueError if the piece is not
    exactly what it should be (or would give more)."""
    if codec == "zlib":
        decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
        result = decompressor.decompress(piece, limit + 1)
        if len(result) > limit:
            raise ValueError(f"a piece gives more than {limit} bytes")
        if decompressor.eof != last or decompressor.unconsumed_tail:
            raise ValueError("not a piece of the writer's zlib stream")
        if last and decompressor.unused_data:
            raise ValueError("bytes after the final deflate block")
        return result, zlib.adler32(result)
    decompressor = member_decompressor(codec)
    result = decompressor.decompress(piece, max_length=limit + 1)
    if len(result) > limit:
        raise ValueError(f"a piece gives more than {limit} bytes")
    if not decompressor.eof or decompressor.unused_data:
        raise ValueError(f"not one whole {codec} stream")
    return result, 0
