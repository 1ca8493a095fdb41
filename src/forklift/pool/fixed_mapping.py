"""Map a file at a chosen address (``mmap`` with ``MAP_FIXED``), through libc (Linux, glibc).

Python's :mod:`mmap` always lets the kernel choose the address. Two things need to choose it:

* :mod:`.page_adoption` maps a file over the caller's own array, so that the array object
  keeps its address while its pages become the file's;
* :mod:`.stripes` maps several files side by side into one region, so that a worker sees an
  array written as several files as one array, without a copy.

Both call :func:`map_fixed`, the one home of the ctypes declaration. Where libc cannot be
loaded (not Linux, or not glibc) :func:`fixed_mapping_available` is false and callers keep
to what Python's :mod:`mmap` can do.

Imports only the standard library (ctypes, loaded on first use: few processes need it).
"""

from __future__ import annotations

import functools
import mmap
import sys
from typing import Any

__all__ = ["fixed_mapping_available", "map_fixed"]

_MAP_FIXED = 0x10
_MAP_FAILED = (1 << 64) - 1  # (void *) -1 as ctypes returns it on 64-bit Linux


@functools.cache
def _libc() -> Any:
    import ctypes
    import ctypes.util
    import platform

    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    return libc


def fixed_mapping_available() -> bool:
    """Whether :func:`map_fixed` can work in this process."""
    return _libc() is not None


def map_fixed(address: int, length: int, prot: int, flags: int, fd: int, offset: int) -> bool:
    """Map ``length`` bytes of ``fd`` from ``offset`` at exactly ``address``.

    Whatever was mapped there is replaced. ``address`` and ``offset`` must be page-aligned.
    ``flags`` is ``MAP_SHARED`` or ``MAP_PRIVATE`` (``MAP_FIXED`` is added). Returns whether
    the mapping was made.
    """
    libc = _libc()
    if libc is None or address % mmap.PAGESIZE or offset % mmap.PAGESIZE:
        return False
    mapped = libc.mmap(address, length, prot, flags | _MAP_FIXED, fd, offset)
    return bool(mapped == address and mapped != _MAP_FAILED)
