"""Reading one section of a forklift file: its chunks read, checked and decompressed.

A section is a list of chunks (offset, stored length, raw length, compressed?, checksum).
:class:`SectionReader` fills one block with them:

* a raw chunk is read piece by piece, each piece checksummed while it is in the cache,
  when ``verify_raw`` is set (the pickle section, and every section of a compressed file);
* a compressed chunk's stored bytes are checksummed, then decompressed with its declared
  raw length as the output limit (a chunk cannot expand past what it declares), on worker
  threads when the codec releases the GIL (at most ``2 * workers`` chunks in flight).

The block is allocated untouched, so a section that claims more than its chunks deliver
costs memory only for what really arrived; a claim the machine cannot even reserve is a
:class:`~forklift.errors.CorruptFileError`.

Imports only :mod:`forklift.errors` and :mod:`forklift._support`.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from forklift._support.cpus import cpu_count
from forklift.errors import ForkliftError
from forklift.persist import layout
from forklift.persist.compressors import Compressor

if TYPE_CHECKING:
    from forklift.persist.reader import Section, Source

__all__ = ["SectionReader"]


def _allocate(length: int) -> Any:
    """An uninitialised writable block (numpy, when present, skips bytearray's zero fill)."""
    numpy = __import__("sys").modules.get("numpy")
    if numpy is None:
        try:
            import numpy
        except ImportError:
            return bytearray(length)
    return numpy.empty(length, dtype=numpy.uint8)


class SectionReader:
    """Reads whole sections of one file (see the module docstring); ``close()`` when done."""

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
        except ForkliftError:  # e.g. the codec's package is missing
            raise
        except Exception as exc:  # each codec has its own error types (zlib.error, ...)
            raise self._source.corrupt(
                f"damaged compressed data ({type(exc).__name__}: {exc})"
            ) from None
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
        try:
            block = _allocate(section.length)
        except MemoryError:
            raise self._source.corrupt(
                f"a section claims {section.length} bytes, more than this machine can allocate"
            ) from None
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


def _unshuffle(data: bytes, width: int, target: memoryview) -> None:
    """Undo the writer's byte shuffle: ``data`` holds byte planes, ``target`` gets items."""
    import numpy

    planes = numpy.frombuffer(data, dtype=numpy.uint8).reshape(width, -1)
    numpy.copyto(numpy.frombuffer(target, dtype=numpy.uint8).reshape(-1, width), planes.T)
