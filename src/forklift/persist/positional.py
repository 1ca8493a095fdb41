"""Large uncompressed dumps to a regular file: every chunk written at its offset, two at once.

Data flow::

    writer --header, index, trailer--> os.pwrite at once (small)
           --each raw chunk: its offset, its bytes, its index entry--> deferred
    flush: the calling thread and one helper take the deferred chunks in file order; each
           hashes a piece (xxh3, which releases the GIL) then os.pwrite's it at its offset

An uncompressed file's layout is known before any byte is read (the sections' lengths and
:func:`.layout.buffer_alignment` fix every offset), so a chunk needs nothing from the chunks
before it: its offset is fixed and its checksum is its own. Two threads each own whole
chunks; while one copies a piece into the page cache (the kernel holds the file's lock for
that), the other hashes its next piece. No piece changes hands, so nothing is copied and no
queue is crossed per piece.

Alignment gaps are never written in a new file: a gap past the end of the file reads as
zeros (a hole, or blocks reserved by :mod:`.preallocate`). Where the file already holds
bytes past the start of the dump, the gaps are written, so the file is the same either way.

Measured (1 GB float64 to ext4, quiet machine, medians, 2026-12-06): 204 ms, against 250 ms
before large sections started on 512 KiB boundaries (then 1 MiB writes at 64-byte-aligned
offsets got small page-cache folios) and np.save's 405 ms (193-1465); hashing then writing on
one thread was 15-20% slower. See :mod:`.writer` and :mod:`.layout` for the figures.

Used only where it can be: a regular file open for writing without ``O_APPEND`` (pwrite
would append), on a system with ``os.pwrite``, for at least :data:`MIN_LENGTH` bytes; a
smaller dump gains nothing from a thread and keeps the writer's sequential buffered path.

Imports only :mod:`forklift.persist.layout`.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import threading
from typing import IO

from forklift.persist import layout

if sys.platform != "win32":
    import fcntl

__all__ = ["MIN_LENGTH", "PositionalOutput", "open_positional"]

#: Uncompressed dumps of fewer bytes are written sequentially by the calling thread. Not
#: tuned finely: the overlap saves ~5 ms per 100 MB of hashing, a thread start and join
#: ~0.1 ms, and a dict of 12,500 small arrays (100 MB, one chunk each) measured the same
#: either way (medians of 11, busy machine: 602 ms here, 685 ms sequential). The same
#: number as the large-section rule's, so a new file's 512 KiB gaps are holes, not zeros.
MIN_LENGTH = layout.LARGE_SECTION
#: Bytes hashed then written per step; the hash reads them from memory, the write copies
#: them again while they are still in the CPU cache (L3 32 MiB here).
PIECE_SIZE = layout.PIECE_SIZE


class PositionalOutput:
    """A file written by offset: small writes at once, raw chunks deferred to :meth:`flush`.

    ``position`` counts bytes from where the file object stood when the dump started, like
    the writer's sequential output, so the two lay files out identically.
    """

    def __init__(self, file: IO[bytes], descriptor: int, base: int, *, zero_gaps: bool) -> None:
        self._file = file
        self._descriptor = descriptor
        self._base = base
        self._zero_gaps = zero_gaps
        self._deferred: list[tuple[int, memoryview, list[int]]] = []
        self.position = 0

    def write(self, data: memoryview | bytes) -> None:
        """Write ``data`` at the current position now."""
        view = memoryview(data).cast("B")
        _write_at(self._descriptor, view, self._base + self.position)
        self.position += view.nbytes

    def align(self, alignment: int = layout.ALIGNMENT) -> None:
        """Skip to the next multiple of ``alignment``: a hole in a new file, zeros written
        over what the file already held."""
        gap = layout.padding(self.position, alignment)
        if gap and self._zero_gaps:
            self.write(bytes(gap))
        self.position += 0 if self._zero_gaps else gap

    def defer(self, chunk: memoryview, entry: list[int]) -> None:
        """Write ``chunk`` here during :meth:`flush`, which stores its checksum in
        ``entry[-1]``."""
        self._deferred.append((self._base + self.position, chunk, entry))
        self.position += chunk.nbytes

    def flush(self, checksum_name: str) -> None:
        """Hash and write every deferred chunk, on the calling thread and one helper."""
        jobs, self._deferred = self._deferred, []
        if not jobs:
            return
        runner = _Runner(self._descriptor, jobs, checksum_name)
        helper = threading.Thread(target=runner.run, name="forklift-dump-raw", daemon=True)
        helper.start()
        try:
            runner.run()
        finally:
            helper.join()
        if runner.errors:
            raise runner.errors[0]

    def close(self) -> None:
        """Leave the file object at the end of what was written, as sequential writes do."""
        self._file.seek(self._base + self.position)


class _Runner:
    """The chunks shared by the threads: each takes the next one not taken, in file order."""

    def __init__(
        self, descriptor: int, jobs: list[tuple[int, memoryview, list[int]]], checksum_name: str
    ) -> None:
        self._descriptor = descriptor
        self._jobs = jobs
        self._checksum_name = checksum_name
        self._next = 0
        self._lock = threading.Lock()
        self.errors: list[BaseException] = []

    def _take(self) -> int:
        with self._lock:
            taken = self._next
            self._next = len(self._jobs) if self.errors else taken + 1
            return taken

    def run(self) -> None:
        try:
            while (index := self._take()) < len(self._jobs):
                offset, chunk, entry = self._jobs[index]
                check = layout.hasher(self._checksum_name)
                for start in range(0, chunk.nbytes, PIECE_SIZE):
                    piece = chunk[start : start + PIECE_SIZE]
                    check.update(piece)
                    _write_at(self._descriptor, piece, offset + start)
                entry[-1] = check.intdigest()
        except BaseException as error:  # the other thread stops at its next chunk
            with self._lock:
                self.errors.append(error)


def _write_at(descriptor: int, view: memoryview, offset: int) -> None:
    while view.nbytes:  # pwrite may write less than asked
        written = os.pwrite(descriptor, view, offset)
        view = view[written:]
        offset += written


def open_positional(file: IO[bytes], length: int) -> PositionalOutput | None:
    """A :class:`PositionalOutput` over ``file`` for a dump of ``length`` bytes, or None
    where the file, the system or the size calls for sequential writes."""
    if length < MIN_LENGTH or sys.platform == "win32" or not hasattr(os, "pwrite"):
        return None
    try:
        descriptor = file.fileno()
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            return None
        if fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_APPEND:
            return None
        file.flush()
        base = file.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return PositionalOutput(file, descriptor, base, zero_gaps=status.st_size > base)
