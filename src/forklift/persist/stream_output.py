"""The writer's output for a compressed file: forklift bytes in, one codec stream out.

Data flow::

    small writes (header, padding, index, trailer) --> a pending buffer --+
    section chunks (CHUNK_SIZE) --------------------------------------+  |
                     worker threads: byte-shuffle, checksum, compress |  |
                                       --in file order--> the user's file (members of
                                          the codec stream, see :mod:`.streams`)

At most ``2 * workers`` chunks are in flight, so memory stays flat for any size, and the
calling thread writes while the workers compress (zlib, bz2, lzma, lz4 and zstd release the
GIL). ``.lzma`` cannot be cut in members: it is compressed by one compressor, in order.

Imports only :mod:`forklift._support` and this package's layout, arrays, bounded and streams.
"""

from __future__ import annotations

import lzma
from typing import IO

from forklift._support.cpus import cpu_count
from forklift.persist import arrays, layout
from forklift.persist.bounded import OrderedJobs
from forklift.persist.streams import STREAM_CODECS, StreamCodec

__all__ = ["StreamOutput"]

# member bytes, the codec's footer value, raw length
_Member = tuple[bytes, int, int]


class StreamOutput:
    """A write-only file whose content is compressed into a :mod:`.streams` codec stream.

    ``position`` counts content (uncompressed) bytes, like the writer's plain output.
    ``layout_only``: read, compress and write nothing; every checksum is the widest its
    algorithm has (the writer's layout pass, which learns the content's length so that the
    header can record it).
    """

    def __init__(
        self, file: IO[bytes], codec_name: str, level: int, *, layout_only: bool = False
    ) -> None:
        self._file = file
        self._codec: StreamCodec = STREAM_CODECS[codec_name]
        self._level = level
        self.position = 0
        #: whether sections' numeric chunks are byte-shuffled for this codec
        self.shuffles = self._codec.shuffle
        self._pending = bytearray()
        self._total = 0  # the codec's running footer value (zlib: Adler-32 so far)
        self._total_length = 0
        self._started = False
        self._layout_only = layout_only
        parallel = self._codec.concatenable and not layout_only
        workers = min(cpu_count(), layout.MAX_WORKERS) if parallel else 1
        self._jobs: OrderedJobs[_Member] = OrderedJobs(
            workers, self._write_member, name="forklift-dump"
        )
        self._alone = (
            lzma.LZMACompressor(lzma.FORMAT_ALONE, preset=level)
            if not self._codec.concatenable and not layout_only
            else None
        )
        if codec_name == "zlib":
            self._total = 1  # Adler-32 of nothing

    def write(self, data: memoryview | bytes) -> None:
        """Append ``data`` to the content (kept until a member's worth is pending)."""
        self._pending += data
        self.position += len(data)
        if len(self._pending) >= layout.CHUNK_SIZE:
            self._flush_pending()

    def align(self, alignment: int = layout.ALIGNMENT) -> None:
        """Pad the content with zeros to the next multiple of ``alignment``."""
        gap = layout.padding(self.position, alignment)
        if gap:
            self.write(bytes(gap))

    def write_section(self, view: memoryview, width: int, checksum: str) -> list[list[int]]:
        """Append one section, cut in chunks; returns its chunk table for the index.

        A chunk of a numeric array is byte-shuffled by ``width`` (its item size) before the
        codec sees it, and stored shuffled in the content (the index says so); each entry's
        checksum (of the stored bytes) is filled in by the worker, before :meth:`close`.
        """
        self._flush_pending()
        entries: list[list[int]] = []
        for start in range(0, len(view), layout.CHUNK_SIZE):
            chunk = view[start : start + layout.CHUNK_SIZE]
            entry = [self.position, len(chunk), len(chunk), 0, 0]
            entries.append(entry)
            self.position += len(chunk)
            shuffle = width if width and len(chunk) % width == 0 else 0
            self._submit(chunk, shuffle, checksum, entry)
        return entries

    def drain(self) -> None:
        """Wait for every submitted chunk (so the chunk tables' checksums are filled in)."""
        self._jobs.drain()

    def close(self) -> None:
        """Write everything still pending and the stream's footer; stop the workers."""
        try:
            self._flush_pending()
            self.drain()
            self._start()
            if self._alone is not None:
                self._file.write(self._alone.flush())
            self._file.write(self._codec.footer(self._total))
        finally:
            self.abort()

    def abort(self) -> None:
        """Stop the workers without writing more (the dump failed)."""
        self._jobs.close()

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._file.write(self._codec.header(self._level))

    def _flush_pending(self) -> None:
        if self._pending:
            data = memoryview(bytes(self._pending))
            self._pending.clear()
            self._submit(data, 0, None, None)

    def _submit(
        self, chunk: memoryview, width: int, checksum: str | None, entry: list[int] | None
    ) -> None:
        self._jobs.submit(self._encode, chunk, width, checksum, entry)

    def _encode(
        self, chunk: memoryview, width: int, checksum: str | None, entry: list[int] | None
    ) -> _Member:
        if self._layout_only:
            if entry is not None and checksum is not None:
                entry[4] = layout.CHECKSUMS[checksum]
            return b"", 0, len(chunk)
        stored = arrays.shuffle_bytes(chunk, width) if width else chunk
        if entry is not None and checksum is not None:
            entry[4] = layout.checksum(checksum, stored)
        if self._alone is not None:
            return self._alone.compress(stored), 0, len(stored)
        member, value = self._codec.member(stored, self._level, width)
        return member, value, len(stored)

    def _write_member(self, item: _Member) -> None:
        member, value, length = item
        self._start()
        self._total = self._codec.combine(self._total, value, length)
        self._total_length += length
        view = memoryview(member)
        written = self._file.write(view)
        # Raw (unbuffered) files may write less than asked; loop until all is out.
        while written is not None and written < len(view):
            view = view[written:]
            written = self._file.write(view)
