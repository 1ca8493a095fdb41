"""Loading a compressed forklift file: decompress the codec stream, then read its content.

Data flow::

    codec stream --(members with recorded sizes: worker threads; otherwise in order)-->
        one block in memory = an uncompressed forklift file
        --> index (checked) --> byte-shuffled chunks unshuffled in place
        --> arrays are views of the block (no second copy), the pickle stream is unpickled

The codec's own checksum (gzip CRC-32, xz CRC-64, zstd/lz4 content checksums, bzip2's)
proves the content intact; ``verify=True`` checks forklift's chunk checksums as well.
Nothing decompresses past the length the content's header declares, and that length is
bounded first (:mod:`.stream_limits`).

Imports only :mod:`forklift.errors`, :mod:`forklift._support` and this package.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import replace
from typing import IO, Any, cast

from forklift._support.cpus import cpu_count
from forklift.errors import CompressorUnavailableError, CorruptFileError
from forklift.persist import arrays, layout, reader, stream_limits, streams
from forklift.persist.bounded import OrderedJobs
from forklift.persist.compressors import import_extra

__all__ = [
    "MemoryFile",
    "decompress",
    "holds_forklift",
    "open_content",
    "read_content",
    "read_exactly",
    "read_stream",
]

_READ_SIZE = 4 << 20
#: The most one piece of a zlib/bz2/xz stream cut at its markers may decode to (the
#: writer's pieces are one CHUNK_SIZE chunk); a larger one is decoded in order instead.
_PIECE_LIMIT = 2 * layout.CHUNK_SIZE


class MemoryFile(io.RawIOBase):
    """A read-only, seekable file over a buffer, without copying it (unlike BytesIO)."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._data)}
        self._position = max(0, base[whence] + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        piece = self._data[self._position : self._position + len(target)]
        target[: len(piece)] = piece
        self._position += len(piece)
        return len(piece)


def _peek(file: IO[bytes], codec: str, count: int) -> bytes:
    """The first ``count`` decompressed bytes (fewer if the stream is shorter)."""
    data = file.read(1 << 16)
    if codec == "zstd":
        zstandard = import_extra("zstandard", "zstd")
        with zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data + file.read(1 << 20)), read_across_frames=True
        ) as stream:
            return bytes(stream.read(count))
    decompressor = streams.member_decompressor(codec)
    out = b""
    while len(out) < count and data:
        if codec in ("gzip", "zlib"):
            out += decompressor.decompress(data, count - len(out))
            data = decompressor.unconsumed_tail
        else:
            out += decompressor.decompress(data, max_length=count - len(out))
            data = b""
        if decompressor.eof:
            if codec in ("lz4", "zstd") and not out:  # a skippable frame: the next one
                data = decompressor.unused_data
                decompressor = streams.member_decompressor(codec)
                continue
            break
        if not data and getattr(decompressor, "needs_input", True):
            data = file.read(1 << 18)
    return out


def holds_forklift(file: IO[bytes], codec: str) -> bool:
    """Whether the ``codec`` stream at ``file``'s position holds a forklift file (else joblib's
    pickle, or damage the caller reports). ``file`` is left where it was."""
    start = file.tell()
    try:
        return _peek(file, codec, len(layout.MAGIC)) == layout.MAGIC
    except CompressorUnavailableError:
        raise
    except Exception:  # damaged or foreign: the joblib reader then says what is wrong
        return False
    finally:
        file.seek(start)


def _parallel(
    file: IO[bytes],
    name: str,
    codec: str,
    start: int,
    table: list[streams.Member],
    unshuffled: dict[int, int] | None,
) -> Any:
    try:
        block = arrays.empty_block(sum(entry[2] for entry in table))
    except MemoryError:
        raise CorruptFileError(
            f"{name}: the {codec} stream's members claim more bytes than this machine has"
        ) from None
    view = memoryview(block).cast("B")
    workers = min(cpu_count(), layout.MAX_WORKERS)

    def decode(data: bytes, raw: int, width: int, target: memoryview, check: int | None) -> None:
        content = streams.decompress_member(codec, data, raw, check)
        if width:  # unshuffled while copied: one pass instead of a copy and an unshuffle
            arrays.unshuffle_into(content, width, target)
        else:
            target[:] = content

    position = 0
    with OrderedJobs(max(1, workers), _ignore, name="forklift-load") as jobs:
        for offset, length, raw, recorded, check in table:
            file.seek(start + offset)
            data = file.read(length)
            if len(data) != length:
                raise CorruptFileError(f"{name}: truncated {codec} stream")
            target = view[position : position + raw]
            width = recorded if unshuffled is not None and recorded in (2, 4, 8, 16) else 0
            if width and raw % width == 0:
                unshuffled[position] = width  # type: ignore[index]
            else:
                width = 0
            position += raw
            jobs.submit(decode, data, raw, width, target, check)
        jobs.drain()
    return block


def _ignore(result: None) -> None:
    """Decoding jobs write into their block: nothing to consume."""


def _in_pieces(data: memoryview, codec: str, declared: int | None, limit: int | None) -> Any:
    """Decode the pieces :func:`streams.split_pieces` finds on threads; None (decode in
    order instead) unless every piece decodes whole and, for zlib, the Adler-32 matches.

    A piece may give at most :data:`_PIECE_LIMIT` bytes (the writer's are one chunk), at
    most ``2 * workers`` are in flight, each is copied into place as it comes, and all
    together give at most ``limit``: a bomb cut in pieces costs no more than one in order.
    """
    pieces = streams.split_pieces(data, codec)
    if pieces is None:
        return None
    workers = max(1, min(cpu_count(), layout.MAX_WORKERS))
    cap = _PIECE_LIMIT if limit is None else min(limit, _PIECE_LIMIT)
    out = stream_limits.ContentBlock(declared, limit)
    total = 1  # Adler-32 of nothing

    def take(result: tuple[bytes, int]) -> None:
        nonlocal total
        output, value = result
        out.append(output)  # past the limit: in order, the error says so
        total = streams.adler32_combine(total, value, len(output))

    with OrderedJobs(workers, take, name="forklift-load") as jobs:
        try:
            for number, piece in enumerate(pieces):
                last = number == len(pieces) - 1
                jobs.submit(streams.decode_piece, codec, piece, last, cap)
            jobs.drain()
        except Exception:  # a marker that was chance, not a boundary: decode in order
            return None
    if codec == "zlib" and total != int.from_bytes(bytes(data[-4:]), "big"):
        return None
    return out.result()


def decompress(
    file: IO[bytes],
    name: str,
    codec: str,
    unshuffled: dict[int, int] | None = None,
    *,
    max_expansion: float | None = None,
) -> Any:
    """The whole decompressed content of the ``codec`` stream at ``file``'s position, as a
    writable uint8 block; CorruptFileError names ``name`` if the stream is damaged.

    ``unshuffled``: a dict to unshuffle members the writer recorded as byte-shuffled while
    they are copied; it receives their content offsets and widths (see :func:`read_content`).
    ``max_expansion``: the largest ratio of content to stream size allowed (None: none; see
    :mod:`.stream_limits`); never more than the content's header declares is decompressed.
    """
    start = file.tell()
    size = file.seek(0, io.SEEK_END) - start
    file.seek(start)
    try:
        declared = layout.sized_length(_peek(file, codec, layout.HEADER_SIZE))
        file.seek(start)
        limit = stream_limits.content_limit(declared, size, name, codec, max_expansion)
        table = streams.member_table(file, start, size, codec)
        if table is not None:
            stream_limits.check_members(table, declared, limit, name)
            return _parallel(file, name, codec, start, table, unshuffled)
        file.seek(start)
        if codec in ("zlib", "bz2", "xz"):
            data = memoryview(file.read())
            block = _in_pieces(data, codec, declared, limit)
            if block is not None:
                return block
            return stream_limits.read_all(io.BytesIO(data), codec, declared, limit)
        return stream_limits.read_all(file, codec, declared, limit)
    except (CorruptFileError, CompressorUnavailableError):
        raise
    except MemoryError:
        raise CorruptFileError(
            f"{name}: its {codec} stream needs more memory than is free"
        ) from None
    except Exception as exc:  # zlib.error, lzma.LZMAError, OSError, zstd/lz4 errors...
        raise CorruptFileError(
            f"{name}: damaged {codec} stream ({type(exc).__name__}: {exc})"
        ) from None


def read_stream(
    file: IO[bytes],
    name: str,
    codec: str,
    *,
    allowed: frozenset[str] | None,
    verify: bool,
    max_expansion: float | None = None,
) -> Any:
    """Load the value stored in the compressed forklift file at ``file``'s position."""
    # verify: forklift's checksums cover the stored (shuffled) bytes, so keep them as stored
    unshuffled: dict[int, int] | None = None if verify else {}
    block = decompress(file, name, codec, unshuffled, max_expansion=max_expansion)
    return read_content(block, name, allowed=allowed, verify=verify, unshuffled=unshuffled)


def read_exactly(file: IO[bytes], head: bytes, length: int, name: str) -> Any:
    """A block of the ``length`` bytes of a file whose first bytes ``head`` were read
    already, read from ``file`` without reading past them (a socket stays usable)."""
    if length < layout.HEADER_SIZE + layout.TRAILER.size:
        raise CorruptFileError(f"{name}: damaged header (a length of {length} bytes)")
    try:
        block = arrays.empty_block(length)
    except MemoryError:
        raise CorruptFileError(f"{name}: its header claims {length} bytes") from None
    view = memoryview(block).cast("B")
    view[: len(head)] = head
    done = len(head)
    while done < length:
        piece = file.read(min(length - done, _READ_SIZE))
        if not piece:
            raise CorruptFileError(f"{name}: truncated: {done} bytes of {length}")
        view[done : done + len(piece)] = piece
        done += len(piece)
    return block


def _prepare_chunks(
    chunks: list[tuple[memoryview, int, str, int]], verify: bool, source: reader.Source
) -> None:
    """Check (``verify``) and unshuffle stored chunks in place, on threads when several."""

    def prepare(target: memoryview, width: int, checksum: str, check: int) -> None:
        if verify and layout.checksum(checksum, target) != check:
            raise source.corrupt("damaged data (checksum mismatch)")
        if width:
            arrays.unshuffle_in_place(target, width)

    workers = min(cpu_count(), layout.MAX_WORKERS) if len(chunks) > 1 else 1
    if workers < 2:
        for chunk in chunks:
            prepare(*chunk)
        return
    with OrderedJobs(workers, _ignore, name="forklift-load") as jobs:
        for chunk in chunks:
            jobs.submit(prepare, *chunk)
        jobs.drain()


def read_content(
    block: Any,
    name: str,
    *,
    allowed: frozenset[str] | None,
    verify: bool,
    unshuffled: dict[int, int] | None = None,
) -> Any:
    """Load the value stored in ``block``, a whole forklift file in memory (writable).

    ``unshuffled``: chunks (content offset: width) already unshuffled while decompressed;
    each must be a shuffled chunk of the index with that width, or the file is damaged.
    """
    done = dict(unshuffled or {})
    whole = memoryview(block).cast("B")
    source = reader.Source(cast(IO[bytes], MemoryFile(whole)), name)
    index = reader.read_index(source)
    sections = []
    chunks: list[tuple[memoryview, int, str, int]] = []  # to check and/or unshuffle
    for stored_section in index.buffers:
        section = stored_section
        raw = not any(chunk[3] for chunk in section.chunks)
        if raw and (section.shuffle or verify):
            for offset, stored, _, _, check in section.chunks:
                width = section.shuffle if section.shuffle and stored % section.shuffle == 0 else 0
                if width and offset in done:
                    if done.pop(offset) != width:
                        raise source.corrupt("a member's shuffle width differs from the index")
                    continue
                chunks.append((whole[offset : offset + stored], width, section.checksum, check))
            section = section._replace(shuffle=0)
        sections.append(section)
    if done:
        raise source.corrupt("a member was recorded as shuffled where the index has no array")
    _prepare_chunks(chunks, verify, source)
    index = replace(index, buffers=tuple(sections))
    return reader.read_file(
        source, index, path=None, mmap_mode=None, allowed=allowed, verify=False, memory=block
    )


def open_content(file: IO[bytes], name: str) -> tuple[reader.Source, str] | None:
    """For ``inspect_file``: the decompressed content of a compressed forklift file as a
    Source, and its compression (``"gzip level 3"``); None if ``file`` is not one."""
    start = file.tell()
    head = file.read(streams.DETECT_LENGTH)
    file.seek(start)
    codec = streams.detect(head)
    if codec is None or not holds_forklift(file, codec):
        return None
    # the inspector reads untrusted files: the safe mode's expansion limit applies
    limit = stream_limits.DEFAULT_MAX_EXPANSION
    whole = memoryview(decompress(file, name, codec, max_expansion=limit)).cast("B")
    label = codec
    trailer = layout.TRAILER.size
    if len(whole) >= layout.HEADER_SIZE + trailer:
        offset, length, _, _ = layout.TRAILER.unpack(bytes(whole[-trailer:]))
        with contextlib.suppress(ValueError, TypeError, KeyError, IndexError):
            recorded = json.loads(bytes(whole[offset : offset + length]))["stream"]
            label = f"{recorded[0]} level {int(recorded[1])}"
    return reader.Source(cast(IO[bytes], MemoryFile(whole)), name), label
