"""One computation per key across threads and processes: advisory file locks.

``flock`` locks belong to an open file description, so two threads that each open the lock
file exclude each other just as two processes do, and the kernel drops the lock when its
holder dies - a crashed writer can never leave a lock that blocks forever. Waiting polls with
a growing sleep (``flock`` has no timeout of its own) up to the caller's timeout.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["file_lock"]

_FIRST_SLEEP = 0.002
_LONGEST_SLEEP = 0.1


@contextlib.contextmanager
def file_lock(path: Path, timeout: float | None) -> Iterator[bool]:
    """Hold an exclusive lock on ``path``; yield True when held, False after ``timeout``.

    If the lock file cannot even be created (read-only cache), yields False at once: the
    caller computes without the guarantee rather than not at all.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield False
        return
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        sleep = _FIRST_SLEEP
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    yield False
                    return
            if deadline is not None and time.monotonic() >= deadline:
                yield False
                return
            time.sleep(sleep)
            sleep = min(sleep * 2, _LONGEST_SLEEP)
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
