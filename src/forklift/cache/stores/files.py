"""The local store's file input and output: whole small files read with plain system
calls, results read and written in persist's format, and the check of an entry that is about
to be memory-mapped.

Kept apart from :mod:`.local`, which decides which file to read or write and how a miss
claims and publishes an entry (it had grown to the 500-line limit). Persist is imported on
first use, not with the store (see :func:`persist_load`).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["READ", "persist_dump", "persist_load", "read_file", "read_opened", "verify_once"]

READ = os.O_RDONLY | os.O_CLOEXEC
_VERIFIED_REMEMBERED = 100_000
# Mapped entries checked in this process (path, inode, size, mtime): per process, not per
# store, as every Memory on one folder reads the same files.
_verified: set[tuple[str, int, int, int]] = set()


# Persist is imported when a side file (or an old entry) is first read or written, not with
# the store: its readers took 230 ms of a fresh process's first hit on the loaded test
# machine (about 40 ms quiet), for results that a plain pickle holds.
def persist_load(path: str, **options: Any) -> Any:
    from forklift.persist import load

    return load(path, **options)


def persist_dump(value: Any, output: Any, **options: Any) -> Any:
    from forklift.persist import dump

    return dump(value, output, **options)


def read_file(path: str) -> bytes:
    """The whole file, with plain system calls (``open()``'s buffered file object costs
    more than the read of a small entry)."""
    return read_opened(os.open(path, READ))


def read_opened(descriptor: int) -> bytes:
    """The whole file open at ``descriptor``, which is then closed."""
    try:
        size = os.fstat(descriptor).st_size
        data = os.read(descriptor, size + 1)  # one more byte: notices a file that grew
        if len(data) <= size:
            return data
        chunks = [data]
        while chunk := os.read(descriptor, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def verify_once(path: str) -> None:
    """Check every checksum of an entry that is about to be memory-mapped.

    Mapped arrays are not read at load time, so ``load(verify=True)`` cannot check them;
    a plain verified load (read once, then dropped) does, once per entry file and
    process: the file's identity (inode, size, modification time) is remembered, and a
    replaced file is verified again.
    """
    status = os.stat(path)
    stamp = (path, status.st_ino, status.st_size, status.st_mtime_ns)
    if stamp in _verified:
        return
    persist_load(path, verify=True)
    if len(_verified) >= _VERIFIED_REMEMBERED:
        _verified.clear()
    _verified.add(stamp)
