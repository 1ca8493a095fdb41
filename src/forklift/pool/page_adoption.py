"""Give a large array's memory back once its bytes are in a shared file (Linux, glibc).

After an array has been written to a file for the workers, the caller would hold two copies:
its own pages and the file's. :func:`adopt_pages` maps the file's pages over the array's own
(``mmap`` with ``MAP_FIXED | MAP_PRIVATE``): the contents are the same bytes, the array object
and its address do not change, and its anonymous pages are freed. The caller and every worker
then read one copy. Writes by the caller afterwards stay private to it (copy-on-write), as
before; workers never see them, exactly as if the array had been copied.

When it is done (:func:`can_adopt`), all of which keeps the re-mapped range a plain private
mapping that the allocator will later ``munmap`` with the rest of its block:

* Linux with glibc, and numpy's default allocator owns the array's memory;
* the array is at least ``ADOPT_MIN_BYTES`` (glibc serves blocks that large with their own
  ``mmap``, never from the heap, so no other object shares the pages re-mapped);
* only whole pages inside the array are re-mapped; the partial first and last pages (shared
  with the allocator's header) keep their memory;
* the process has room for three more memory areas below ``vm.max_map_count``.

One caveat, documented for users: another thread writing into the array while it is being
written to the file could lose that write. ``FORKLIFT_ADOPT_ARRAYS=0`` turns adoption off.

Imports only the standard library and :mod:`.fixed_mapping`; numpy is reached through the array.
"""

from __future__ import annotations

import mmap
import os
from typing import Any

from forklift.pool.fixed_mapping import fixed_mapping_available, map_fixed

__all__ = ["ADOPT_MIN_BYTES", "adopt_pages", "adoption_enabled", "can_adopt"]

ADOPT_MIN_BYTES = 64 << 20
_PROT = mmap.PROT_READ | mmap.PROT_WRITE


def adoption_enabled() -> bool:
    return os.environ.get("FORKLIFT_ADOPT_ARRAYS", "1").strip().lower() not in ("0", "false", "no")


def _default_allocator(array: Any) -> bool:
    import numpy as np

    # numpy 2 keeps it in numpy._core (numpy.core warns); numpy 1.22+ in numpy.core.
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    get_handler_name = getattr(getattr(core, "multiarray", None), "get_handler_name", None)
    if get_handler_name is None:
        return False
    owner = array
    while getattr(owner, "base", None) is not None:
        owner = owner.base
    if type(owner).__module__ != "numpy" or not owner.flags.owndata:
        return False  # memory from a buffer, a file, another library: not ours to touch
    return bool(get_handler_name(owner) == "default_allocator")


def _map_count_headroom() -> bool:
    try:
        with open("/proc/sys/vm/max_map_count") as limit_file:
            limit = int(limit_file.read())
        with open("/proc/self/maps", "rb") as maps:
            used = maps.read().count(b"\n")
    except (OSError, ValueError):
        return False
    return used + 1000 < limit


def can_adopt(array: Any) -> bool:
    """Whether :func:`adopt_pages` may re-map ``array``'s memory (see the module docstring)."""
    return (
        array.nbytes >= ADOPT_MIN_BYTES
        and adoption_enabled()
        and (array.flags.c_contiguous or array.flags.f_contiguous)
        and fixed_mapping_available()
        and _default_allocator(array)
        and _map_count_headroom()
    )


def adopt_pages(address: int, nbytes: int, fd: int, file_offset: int) -> bool:
    """Map ``fd`` over the whole pages of ``[address, address + nbytes)``.

    ``file_offset`` is where the byte at ``address`` sits in the file, and must be congruent
    to ``address`` modulo the page size. Returns whether the pages were re-mapped.
    """
    page = mmap.PAGESIZE
    start = -(-address // page) * page
    end = (address + nbytes) // page * page
    if end - start < page or (address - file_offset) % page:
        return False
    return map_fixed(start, end - start, _PROT, mmap.MAP_PRIVATE, fd, file_offset + start - address)
