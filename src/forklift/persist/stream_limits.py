"""How far a codec stream may expand: bounds taken before anything is decompressed.

The content of a compressed forklift file is an uncompressed forklift file whose header
records its length (forklift's writer always records it there). The reader decompresses the
first bytes, takes that declared length as the limit, and never decompresses past it: a
stream that goes on (a decompression bomb) is damage, found after at most one byte more.

The declared length itself is bounded by what the file can hold. Compressed data has no
natural bound, so the limit is explicit: with ``max_expansion`` set (by default in safe mode,
``allowed_globals``), the content may be at most that many times the compressed size
(:data:`DEFAULT_MAX_EXPANSION`), or :data:`EXPANSION_FLOOR` bytes for small files. Content
that records no length (an old forklift file compressed by another tool) is decompressed up
to that same limit; in plain mode (the file is trusted, as pickle trusts it) without one.
Member sizes recorded by forklift's writer (gzip ``FK`` fields, zstd/lz4 skippable frames)
are bounded like compressed chunks (:data:`~forklift.persist.reader.MAX_CODED_CHUNK_RAW`)
and must add up to the declared length.

Imports only :mod:`forklift.errors` and this package's layout, reader and streams.
"""

from __future__ import annotations

import math
from typing import IO, Any

from forklift.errors import ConfigurationError, CorruptFileError
from forklift.persist import layout, reader, streams
from forklift.persist.compressors import import_extra

__all__ = [
    "DEFAULT_MAX_EXPANSION",
    "EXPANSION_FLOOR",
    "ContentBlock",
    "check_members",
    "content_limit",
    "read_all",
    "resolve_max_expansion",
]

#: In safe mode a codec stream's content may be at most this many times its compressed size
#: (real data rarely exceeds 20; all-zero arrays reach ~1000 with gzip and more with xz/zstd:
#: load those with a larger ``max_expansion``).
DEFAULT_MAX_EXPANSION = 200.0
#: ... unless it is at most this long: small files are never refused for their ratio.
EXPANSION_FLOOR = 64 << 20
_READ_SIZE = 4 << 20


def resolve_max_expansion(value: object, safe: bool) -> float | None:
    """``load``'s ``max_expansion`` as a ratio (None: no ratio limit); checks its type."""
    if value is None:
        return DEFAULT_MAX_EXPANSION if safe else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(
            f"max_expansion={value!r}: expected a positive number (a ratio of decompressed "
            "to compressed size), math.inf for no limit, or None for the default"
        )
    return None if math.isinf(value) else float(value)


def content_limit(
    declared: int | None, compressed: int, name: str, codec: str, max_expansion: float | None
) -> int | None:
    """The most bytes the content of a ``compressed``-byte stream may decompress to (None:
    unbounded, a trusted file without a declared length); CorruptFileError if the declared
    length is impossible or over the ``max_expansion`` limit."""
    smallest = layout.HEADER_SIZE + layout.TRAILER.size
    if declared is not None and declared < smallest:
        raise CorruptFileError(f"{name}: damaged header (a length of {declared} bytes)")
    if max_expansion is None:
        return declared
    allowed = max(EXPANSION_FLOOR, int(compressed * max_expansion))
    if declared is None or declared <= allowed:
        return declared if declared is not None else allowed
    needed = math.ceil(declared / max(compressed, 1))
    raise CorruptFileError(
        f"{name}: its {compressed}-byte {codec} stream declares {declared} bytes of content, "
        f"{needed} times its size, over the limit of max_expansion={max_expansion:g} for "
        f"untrusted files; if you trust this file, pass max_expansion={needed} (or math.inf) "
        "to load"
    )


def check_members(
    table: list[streams.Member], declared: int | None, limit: int | None, name: str
) -> None:
    """Bound the raw sizes forklift's writer recorded for each member before allocating."""
    total = 0
    for _, _, raw, _, _ in table:
        if not 0 <= raw <= reader.MAX_CODED_CHUNK_RAW:
            raise CorruptFileError(
                f"{name}: a member records {raw} bytes (at most {reader.MAX_CODED_CHUNK_RAW})"
            )
        total += raw
    if declared is not None and total != declared:
        raise CorruptFileError(
            f"{name}: its members record {total} bytes, its header declares {declared}"
        )
    if limit is not None and total > limit:
        raise CorruptFileError(f"{name}: its members record {total} bytes, over {limit}")


def _past(limit: int) -> ValueError:
    return ValueError(f"the content goes on past the {limit} bytes it may have")


class ContentBlock:
    """The content, appended in order: into one block of the declared length, allocated
    untouched (a false claim costs only what really arrives; no copy when it grows), or,
    with no declared length, a bytearray of at most ``limit`` bytes (None: unbounded)."""

    def __init__(self, declared: int | None, limit: int | None) -> None:
        self.length = 0
        self._limit = declared if declared is not None else limit
        self._data: Any = bytearray()
        self._view: memoryview | None = None
        if declared is not None:
            try:
                import numpy
            except ImportError:  # bytearray zero-fills: grow it instead
                return
            self._data = numpy.empty(declared, dtype=numpy.uint8)
            self._view = memoryview(self._data).cast("B")

    def room(self) -> int:
        """How many more bytes may come, plus one (0: no limit)."""
        return 0 if self._limit is None else self._limit + 1 - self.length

    def append(self, data: bytes | memoryview) -> None:
        end = self.length + len(data)
        if self._limit is not None and end > self._limit:
            raise _past(self._limit)
        if self._view is not None:
            self._view[self.length : end] = data
        else:
            self._data += data
        self.length = end

    def result(self) -> Any:
        """The content as a writable uint8 block (numpy when present)."""
        if self._view is not None:
            return self._data[: self.length]
        try:
            import numpy
        except ImportError:
            return self._data
        return numpy.frombuffer(self._data, dtype=numpy.uint8)  # writable, shares the bytes


def _read_zstd(file: IO[bytes], out: ContentBlock) -> Any:
    zstandard = import_extra("zstandard", "zstd")
    # the stream reader skips skippable frames and never produces more than it is asked for
    with zstandard.ZstdDecompressor().stream_reader(
        file, read_across_frames=True, closefd=False
    ) as stream:
        while True:
            room = out.room()
            piece = stream.read(_READ_SIZE if not room else min(_READ_SIZE, room))
            if not piece:
                return out.result()
            out.append(piece)


def _feed(current: Any, codec: str, data: bytes, out: ContentBlock) -> bytes | None:
    """Decompress ``data`` into ``out`` in pieces of at most :data:`_READ_SIZE` (no output
    larger than that is ever held twice); the bytes after the member's end, or None if the
    member goes on in the next data."""
    zlib_like = codec in ("gzip", "zlib")
    while True:
        room = out.room()  # at most one byte past the limit: then ``append`` raises
        step = min(room, _READ_SIZE) if room else _READ_SIZE
        if zlib_like:
            out.append(current.decompress(data, step))
            data = current.unconsumed_tail
        else:
            out.append(current.decompress(data, max_length=step))
            data = b""
        if current.eof:
            return bytes(current.unused_data)
        if (zlib_like and not data) or (not zlib_like and current.needs_input):
            return None


def read_all(file: IO[bytes], codec: str, declared: int | None, limit: int | None) -> Any:
    """Decompress the whole ``codec`` stream at ``file``'s position in order into a uint8
    block, never past ``limit`` bytes (ValueError, as for any damage, when it would go on)."""
    out = ContentBlock(declared, limit)
    if codec == "zstd":
        return _read_zstd(file, out)
    current: Any = None
    finished = False  # the last member ended exactly where the data ends
    while data := file.read(_READ_SIZE):
        while data:
            if current is None:
                current = streams.member_decompressor(codec)
                finished = False
            rest = _feed(current, codec, data, out)
            if rest is None:
                break
            data, current, finished = rest, None, True
            if codec in ("zlib", "lzma") and (data or file.read(1)):
                raise ValueError(f"unexpected bytes after the {codec} stream")
    if not finished:
        raise ValueError("truncated: it ends inside a member")
    return out.result()
