"""Reserving a file's disk blocks before a large uncompressed dump writes them.

On Linux, ``fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length)`` reserves the blocks an
uncompressed dump is about to fill, without changing the file's size (a dump that fails or
writes less leaves no tail of zeros). The filesystem then allocates one extent up front
instead of block by block as the page cache fills; ``np.save`` does the same (numpy's
``tofile`` calls it), and that is most of the gap between its pace and a plain ``write``
loop (see the measurement in :data:`MIN_LENGTH`'s comment and ``docs/format.md``).

Rejected: ``os.posix_fallocate``, which changes the file's size and which glibc emulates,
where the filesystem lacks fallocate, by writing a byte into every block (a second pass
over the file). Here an unsupported filesystem, platform or file object simply skips it.

Imports nothing from forklift.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
from typing import IO, Any

__all__ = ["MIN_LENGTH", "preallocate"]

#: Dumps smaller than this skip the call (one syscall; too little to gain).
MIN_LENGTH = 8 << 20
_FALLOC_FL_KEEP_SIZE = 1


@functools.cache
def _fallocate() -> Any:
    """libc's ``fallocate``, or None where there is none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


def preallocate(file: IO[bytes], length: int) -> None:
    """Reserve ``length`` bytes of ``file`` from its position, where the system can;
    otherwise do nothing (never an error: this only saves time)."""
    if length < MIN_LENGTH:
        return
    function = _fallocate()
    if function is None:
        return
    with contextlib.suppress(AttributeError, OSError, ValueError):
        function(file.fileno(), _FALLOC_FL_KEEP_SIZE, file.tell(), length)
