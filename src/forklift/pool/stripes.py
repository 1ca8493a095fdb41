"""A large array written as several files by several threads, mapped back as one region.

Writing a 400 MB array into one file on tmpfs (``/dev/shm``) is bound by the kernel
filling pages, 0.20 s of CPU here, under that file's inode lock (``write`` holds it for the
whole call): writes to one file are serialised, whatever the number of threads. Writes to
*different* files run side by side, so an array is cut into stripes, each its own file,
each written by its own thread: with two stripes each writer's CPU time is halved (0.10 s)
and their sum unchanged, so two idle cores write 400 MB in ~0.09 s (issue 16's quiet
measurement) where one thread took 0.18-0.20 s.

The array is first laid out in a *logical file*: ``head`` bytes of padding (so that the
file's pages line up with the array's pages in the caller's memory, for
:mod:`.page_adoption`), then the array's bytes. Stripe ``i`` holds the logical bytes
``[i * stripe_bytes, (i + 1) * stripe_bytes)``; every stripe but the last is a whole number
of pages (of ``STRIPE_ALIGN`` bytes, in fact).

A worker sees the stripes as one array without a copy (:func:`map_stripes`): Python's
:mod:`mmap` reserves one anonymous region as large as the logical file, then each stripe
file is mapped over its part of the region at a fixed address (``MAP_FIXED``, see
:mod:`.fixed_mapping`). The ``mmap.mmap`` object owns the whole region: when the array dies,
its ``munmap`` of the region removes the stripes' mappings too. The access mode is the
region's and the stripes' alike: read-only shared maps for ``"r"``, writable shared maps
for ``"r+"`` (writes reach the files, so other workers see them), private writable maps for
``"c"``.

Rejected alternatives:

* several threads writing one file at different offsets: serialised by the same inode lock
  (measured here on a busy machine, best of 15: 0.31 s against one thread's 0.22 s);
* copying into a shared ``mmap`` of the file instead of ``pwrite``: no lock, but one page
  fault per 4 KiB and each page zeroed before it is overwritten: 0.53 s of CPU per 400 MB
  (0.39 s with ``MAP_POPULATE``) against ``pwrite``'s 0.22 s;
* giving the worker a list of arrays (one per stripe): the task's function must see the
  array it was given.

Imports only the standard library, :func:`forklift._support.cpus.cpu_count` and this
package's mapping and adoption helpers.
"""

from __future__ import annotations

import mmap
import os
import threading
from collections.abc import Sequence

from forklift._support.cpus import cpu_count
from forklift.pool.fixed_mapping import fixed_mapping_available, map_fixed
from forklift.pool.page_adoption import adopt_pages

__all__ = [
    "MAX_STRIPES",
    "STRIPE_ALIGN",
    "STRIPE_MIN_BYTES",
    "map_stripes",
    "stripe_sizes",
    "write_stripes",
]

# A stripe is worth a thread from this size on (a thread costs ~0.1 ms; 32 MB take ~15 ms).
STRIPE_MIN_BYTES = 32 << 20
# More writers than this gain nothing once memory bandwidth is the limit (and this machine
# has 2 cores to measure with: the cap is a guess that keeps the file count small).
MAX_STRIPES = 4
# Stripe boundaries fall on 2 MiB: whole pages, and whole huge pages where tmpfs uses them.
STRIPE_ALIGN = 2 << 20
_WRITE_CHUNK = 64 << 20

# mmap_mode in the worker -> (Python's access for the region, prot and flags for stripes)
_WORKER_MAPS = {
    "r": (mmap.ACCESS_READ, mmap.PROT_READ, mmap.MAP_SHARED),
    "r+": (mmap.ACCESS_WRITE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED),
    "c": (mmap.ACCESS_COPY, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE),
}


def stripe_sizes(size: int) -> list[int]:
    """The sizes of the files a logical file of ``size`` bytes is written as (one file when
    striping would not pay, or when workers could not map stripes back into one region)."""
    count = min(MAX_STRIPES, cpu_count(), size // STRIPE_MIN_BYTES)
    if count < 2 or not fixed_mapping_available():
        return [size]
    stripe = -(-size // count // STRIPE_ALIGN) * STRIPE_ALIGN
    sizes = []
    while size > 0:
        sizes.append(min(stripe, size))
        size -= stripe
    return sizes


def write_at(fd: int, view: memoryview, offset: int) -> None:
    """Write all of ``view`` at ``offset`` (``os.pwrite`` may write less than asked)."""
    while view:
        written = os.pwrite(fd, view[:_WRITE_CHUNK], offset)
        view = view[written:]
        offset += written


def write_stripes(
    raw: memoryview, head: int, fds: Sequence[int], sizes: Sequence[int], adopt_at: int | None
) -> bool:
    """Write ``raw`` (the array's bytes) at logical offset ``head`` across the stripe files.

    One thread per stripe (this thread writes the first). With ``adopt_at`` (the address of
    ``raw`` in memory), each thread then maps its stripe over the array's own pages (see
    :mod:`.page_adoption`); returns whether every stripe was adopted. Raises the first error
    any writer met.
    """
    errors: list[BaseException] = []
    adopted = [False] * len(fds)
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    done = [threading.Event() for _ in fds]

    def write(index: int) -> None:
        try:
            low = max(starts[index], head)
            high = min(starts[index] + sizes[index], head + len(raw))
            if high <= low:
                adopted[index] = True
                return
            fd, file_offset = fds[index], low - starts[index]
            write_at(fd, raw[low - head : high - head], file_offset)
            if adopt_at is not None:
                adopted[index] = adopt_pages(adopt_at + low - head, high - low, fd, file_offset)
        except BaseException as error:  # handed to the caller's thread
            errors.append(error)
        finally:
            done[index].set()

    for index in range(1, len(fds)):
        threading.Thread(target=write, args=(index,), daemon=True).start()
    write(0)
    # The caller closes the descriptors next: a writer still running could then write into
    # whatever file reuses the number. So every writer is waited for, even through Ctrl-C
    # (with events: after an interrupted join, Thread.is_alive() may say False too soon).
    interrupted: BaseException | None = None
    for event in done:
        while not event.is_set():
            try:
                event.wait()
            except BaseException as error:  # re-raised once all writers are done
                interrupted = interrupted or error
    if interrupted is not None:
        raise interrupted
    if errors:
        raise errors[0]
    return all(adopted)


def map_stripes(paths: Sequence[str], stripe_bytes: int, size: int, mode: str) -> mmap.mmap:
    """One mapping of the logical file of ``size`` bytes written as the stripe files
    ``paths`` (each ``stripe_bytes`` long but the last), opened as ``mode`` (``"r"``,
    ``"r+"`` or ``"c"``). Closing (or dropping) the returned map unmaps every stripe."""
    import numpy as np

    access, prot, flags = _WORKER_MAPS[mode]
    region = mmap.mmap(-1, size, access=access)
    try:
        address = np.frombuffer(region, dtype=np.uint8).__array_interface__["data"][0]
        for index, path in enumerate(paths):
            start = index * stripe_bytes
            length = min(stripe_bytes, size - start)
            fd = os.open(path, os.O_RDWR if mode == "r+" else os.O_RDONLY)
            try:
                if not map_fixed(address + start, length, prot, flags, fd, 0):
                    raise OSError(f"could not map {path!r} into the array's region")
            finally:
                os.close(fd)
    except BaseException:
        region.close()
        raise
    return region
