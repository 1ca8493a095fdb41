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

from typing import TYPE_CHECKING, Any

from forklift._support.cpus import cpu_count
from forklift.errors import ForkliftError
from forklift.persist import arrays, layout
from forklift.persist.bounded import OrderedJobs
from forklift.persist.compressors import Compressor

if TYPE_CHECKING:
    from forklift.persist.reader import Section, Source

__all__ = ["SectionReader"]


#: Raw sections of at most this many bytes, one chunk each and next to each other in the
#: file, are read together into one block of at most :data:`GROUP_BLOCK` bytes and returned
#: as views of it: one read call instead of one each (a dict of 12,500 small arrays loaded
#: in 0.25 s, 60% of it per-section calls: allocating, seeking, reading). Small sections
#: only, so a block kept alive by one array it holds stays small.
GROUP_SECTION = 64 << 10
GROUP_BLOCK = 4 << 20


class SectionReader:
    """Reads whole sections of one file (see the module docstring); ``close()`` when done."""

    def __init__(self, source: Source, compressor: Compressor | None, total: int) -> None:
        self.verify_raw = True  # the pickle section is always verified
        self._source = source
        self._compressor = compressor
        workers = 1
        if compressor is not None and compressor.parallel and total > layout.CHUNK_SIZE:
            # cpu_count reads cgroup files: only when it matters
            workers = min(cpu_count(), layout.MAX_WORKERS)
        self._jobs: OrderedJobs[None] = OrderedJobs(workers, _ignore, name="forklift-load")

    def close(self) -> None:
        self._jobs.close()

    def _check(self, name: str, data: memoryview | bytes, expected: int) -> None:
        if layout.checksum(name, data) != expected:
            raise self._source.corrupt("damaged data (checksum mismatch)")

    def _decode(
        self, name: str, stored: bytes, raw: int, check: int, target: memoryview, width: int
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
            arrays.unshuffle_into(data, width, target)
        else:
            target[:] = data

    def _read_raw(self, name: str, offset: int, target: memoryview, expected: int) -> None:
        """Read a raw chunk piece by piece, checksumming each piece while it is cache-hot."""
        if not self.verify_raw:
            self._source.readinto(offset, target)
            return
        check = layout.hasher(name)
        for start in range(0, len(target), layout.PIECE_SIZE):
            piece = target[start : start + layout.PIECE_SIZE]
            self._source.readinto(offset + start, piece)
            check.update(piece)
        if check.intdigest() != expected:
            raise self._source.corrupt("damaged data (checksum mismatch)")

    def read_all(self, sections: tuple[Section, ...]) -> list[Any]:
        """The blocks of ``sections``, in order; small raw neighbours read as one block."""
        blocks: list[Any] = []
        run: list[tuple[int, int, int, str]] = []  # offset, length, checksum, its algorithm
        run_start = run_end = 0
        for section in sections:
            chunks = section.chunks
            if len(chunks) == 1 and section.length <= GROUP_SECTION and not section.shuffle:
                offset, stored, _, coded, check = chunks[0]
                if not coded:
                    if run and (offset < run_end or offset + stored - run_start > GROUP_BLOCK):
                        blocks += self._read_run(run, run_start, run_end)
                        run = []
                    if not run:
                        run_start = offset
                    run.append((offset, stored, check, section.checksum))
                    run_end = offset + stored
                    continue
            if run:
                blocks += self._read_run(run, run_start, run_end)
                run = []
            blocks.append(self.read(section))
        if run:
            blocks += self._read_run(run, run_start, run_end)
        return blocks

    def _read_run(self, run: list[tuple[int, int, int, str]], start: int, end: int) -> list[Any]:
        """Read the sections of ``run`` (file bytes ``start``-``end``) as views of one block."""
        block = arrays.empty_block(end - start, self._source.start + start)
        self._source.readinto(start, memoryview(block).cast("B"))
        views = []
        for offset, stored, check, name in run:
            view = block[offset - start : offset - start + stored]
            if self.verify_raw:
                self._check(name, memoryview(view).cast("B"), check)
            views.append(view)
        return views

    def read(self, section: Section) -> Any:
        first = section.chunks[0][0] if section.chunks else 0
        if section.chunks:
            last = section.chunks[-1]
            self._source.will_need(first, last[0] + last[1] - first)
        try:
            # placed like the file's bytes within a page: see arrays.empty_block
            block = arrays.empty_block(section.length, self._source.start + first)
        except MemoryError:
            raise self._source.corrupt(
                f"a section claims {section.length} bytes, more than this machine can allocate"
            ) from None
        view = memoryview(block).cast("B")
        position = 0
        try:
            for offset, stored, raw, coded, check in section.chunks:
                target = view[position : position + raw]
                position += raw
                if not coded:
                    self._read_raw(section.checksum, offset, target, check)
                    if section.shuffle and raw % section.shuffle == 0:
                        arrays.unshuffle_in_place(target, section.shuffle)  # see streams.py
                    continue
                if self._compressor is None:
                    raise self._source.corrupt("compressed chunk in an uncompressed file")
                data = self._source.read(offset, stored)
                self._jobs.submit(
                    self._decode, section.checksum, data, raw, check, target, section.shuffle
                )
            self._jobs.drain()
        except BaseException:
            self._jobs.close()  # no job may still write into the block
            raise
        return block


def _ignore(result: None) -> None:
    """The jobs of :class:`SectionReader` write into their block: nothing to consume."""
