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

from forklift.cache.stores.base import ItemLock

__all__ = ["KeyLock", "file_lock"]

_FIRST_SLEEP = 0.002
_LONGEST_SLEEP = 0.1


class KeyLock(ItemLock):
    """The lock of one key, as a context manager; see :func:`file_lock`.

    ``done()`` marks the key as computed and stored: the lock file is then removed on release,
    so finished keys leave no lock files behind. That is safe because a process waiting on
    the removed file looks the key up again once it gets the lock and finds it stored; only
    a key that was *not* stored keeps its lock file, so the next waiter still excludes others.
    """

    def __init__(self, path: Path, timeout: float | None) -> None:
        self._context = file_lock(path, timeout)
        self._path = path
        self._finished = False

    def done(self) -> None:
        self._finished = True

    def __enter__(self) -> bool:
        return self._context.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        if self._finished:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
        self._context.__exit__(None, None, None)


_known_folders: set[str] = set()


@contextlib.contextmanager
def file_lock(path: Path, timeout: float | None) -> Iterator[bool]:
    """Hold an exclusive lock on ``path``; yield True when held, False after ``timeout``.

    If the lock file cannot even be created (read-only cache), yields False at once: the
    caller computes without the guarantee rather than not at all.
    """
    try:
        folder = os.path.dirname(path)
        if folder not in _known_folders:
            os.makedirs(folder, exist_ok=True)
            _known_folders.add(folder)
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # the folder was removed (cache cleared) meanwhile
            os.makedirs(folder, exist_ok=True)
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
