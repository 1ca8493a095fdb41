"""Folders where large arrays are written for workers, which never outlive their owner.

One :class:`CallFolders` serves one ``Parallel`` call (one sharing scope). It creates a folder
the first time an array needs one, named ``forklift-arrays-<pid>-<start>-<random>`` so that
anyone can tell whether its owner still runs: ``<start>`` is the owner's start time (from
``/proc``), which tells a live owner from a later process that got the same pid.

Where folders go (the first that applies):

1. the ``temp_folder`` argument;
2. the ``FORKLIFT_TEMP_FOLDER`` environment variable, then joblib's ``JOBLIB_TEMP_FOLDER``;
3. ``/dev/shm`` (memory, no disk writes) when it has room for the array with a margin;
4. the system temp directory (:func:`tempfile.gettempdir`).

A folder is removed by :meth:`CallFolders.close` (the call ended), at interpreter exit
(:mod:`atexit`), and otherwise by the next process that creates a folder in the same place:
it sweeps folders whose owner is gone (e.g. killed with SIGKILL).

The free space is checked before an array is written, so a full folder gives a
:class:`~forklift.errors.TempSpaceError` up front; a writer that runs out of space anyway
raises the same error (:func:`no_room`). Workers map a file only once it is complete.

Imports only the standard library and :mod:`forklift.errors`.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import secrets
import shutil
import tempfile
import threading

from forklift._support.sizes import format_bytes
from forklift.errors import TempSpaceError

__all__ = [
    "FOLDER_PREFIX",
    "NO_ROOM_ERRNOS",
    "TEMP_FOLDER_VARIABLES",
    "CallFolders",
    "no_room",
    "sweep_orphans",
]

logger = logging.getLogger("forklift.pool")

FOLDER_PREFIX = "forklift-arrays-"
TEMP_FOLDER_VARIABLES = ("FORKLIFT_TEMP_FOLDER", "JOBLIB_TEMP_FOLDER")
SHARED_MEMORY = "/dev/shm"
# /dev/shm is used only if this much stays free after the array: other programs need it too.
SHARED_MEMORY_RESERVE = 256 << 20

_lock = threading.Lock()
_live_folders: set[str] = set()  # this process's folders, removed at exit if still there
_swept: set[str] = set()  # bases already swept by this process


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None if it is not running."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        if os.path.isdir("/proc/self"):
            return None  # /proc works and has no such process
        try:  # no /proc (macOS): a signal-0 probe, which cannot tell pid reuse apart
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "0"
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = text[text.rfind(b")") + 2 :].split()
    return fields[19].decode()


def _owner_is_gone(name: str) -> bool:
    parts = name[len(FOLDER_PREFIX) :].split("-")
    if len(parts) != 3 or not parts[0].isdigit():
        return False  # not ours to judge
    start = _start_time(int(parts[0]))
    return start is None or (start != "0" and parts[1] != "0" and start != parts[1])


def sweep_orphans(base: str) -> list[str]:
    """Remove the array folders in ``base`` whose owner process is gone; return their paths."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        if (
            entry.name.startswith(FOLDER_PREFIX)
            and entry.is_dir(follow_symlinks=False)
            and _owner_is_gone(entry.name)
        ):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    if removed:
        logger.info("removed %d array folders left by processes that died", len(removed))
    return removed


def _free_bytes(folder: str) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def _chosen_base(temp_folder: str | None, nbytes: int) -> str:
    if temp_folder is not None:
        return os.path.abspath(os.path.expanduser(temp_folder))
    for variable in TEMP_FOLDER_VARIABLES:
        value = os.environ.get(variable)
        if value:
            return os.path.abspath(os.path.expanduser(value))
    try:
        if (
            os.access(SHARED_MEMORY, os.W_OK | os.X_OK)
            and _free_bytes(SHARED_MEMORY) >= nbytes + SHARED_MEMORY_RESERVE
        ):
            return SHARED_MEMORY
    except OSError:
        pass
    return tempfile.gettempdir()


class CallFolders:
    """The folders holding one call's arrays; :meth:`close` removes them.

    ``temp_folder`` fixes the place (else see the module docstring). Thread-safe.
    """

    def __init__(self, temp_folder: str | None = None) -> None:
        self.temp_folder = temp_folder
        self._folders: dict[str, str] = {}  # base -> our folder in it
        self._lock = threading.Lock()
        self._names = 0
        self.closed = False

    @property
    def folders(self) -> list[str]:
        return list(self._folders.values())

    def create_file(self, nbytes: int, stem: str = "array") -> tuple[int, str]:
        """A new (sparse) file of ``nbytes`` bytes, open for writing: ``(fd, path)``.

        Raises :class:`~forklift.errors.TempSpaceError` when the folder has not that much room.
        """
        ((fd, path),) = self.create_files([nbytes], stem)
        return fd, path

    def create_files(self, sizes: list[int], stem: str = "array") -> list[tuple[int, str]]:
        """New (sparse) files of these sizes, all in one folder, open for writing.

        The folder is chosen for their total size; the names are ``<stem>-<n>.bin`` with
        ``.<i>`` added to each when there are several (the stripes of one array). Raises
        :class:`~forklift.errors.TempSpaceError` when the folder has not that much room.
        """
        total = sum(sizes)
        base = _chosen_base(self.temp_folder, total)
        with self._lock:
            if self.closed:
                raise RuntimeError("these array folders were closed")
            folder = self._folders.get(base) or self._make_folder(base, total)
            self._names += 1
            name = f"{stem}-{self._names}"
        names = (
            [f"{name}.bin"] if len(sizes) == 1 else [f"{name}.{i}.bin" for i in range(len(sizes))]
        )
        created: list[tuple[int, str]] = []
        try:
            _check_room(total, folder)
            for nbytes, file_name in zip(sizes, names, strict=True):
                path = os.path.join(folder, file_name)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                created.append((fd, path))
                if nbytes:
                    _set_size(fd, nbytes, folder)
        except BaseException:
            for fd, path in created:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise
        return created

    def _make_folder(self, base: str, nbytes: int) -> str:
        if base not in _swept:
            _swept.add(base)
            sweep_orphans(base)
        name = (
            f"{FOLDER_PREFIX}{os.getpid()}-{_start_time(os.getpid()) or 0}-{secrets.token_hex(4)}"
        )
        folder = os.path.join(base, name)
        try:
            os.makedirs(base, exist_ok=True)
            os.mkdir(folder, 0o700)
        except OSError as error:
            raise TempSpaceError(
                error.errno or errno.EIO,
                f"cannot create a folder for large arrays in {base!r} ({error.strerror}); "
                "pass Parallel(temp_folder=...) or set FORKLIFT_TEMP_FOLDER to a writable "
                "folder, or max_nbytes=None to send arrays by pickling",
                folder=base,
            ) from error
        with _lock:
            _live_folders.add(folder)
        self._folders[base] = folder
        return folder

    def close(self) -> None:
        """Remove every folder of this call (workers keep the arrays they have mapped)."""
        with self._lock:
            self.closed = True
            folders, self._folders = list(self._folders.values()), {}
        for folder in folders:
            _remove(folder)


def _check_room(nbytes: int, folder: str) -> None:
    # A check, then sparse files: posix_fallocate would zero every page only for the
    # writer to overwrite it (a third of the time to share a large array on tmpfs). A
    # writer that still runs out of space (another process took it meanwhile) gets the same
    # error from :func:`no_room`.
    try:
        free = _free_bytes(folder)
    except OSError:
        free = None
    if free is not None and free < nbytes:
        raise no_room(nbytes, folder, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))


def _set_size(fd: int, nbytes: int, folder: str) -> None:
    try:
        os.ftruncate(fd, nbytes)
    except OSError as error:
        if error.errno in NO_ROOM_ERRNOS:
            raise no_room(nbytes, folder, error) from error
        raise


def no_room(nbytes: int, folder: str, cause: OSError) -> TempSpaceError:
    """The error for ``nbytes`` that did not fit in ``folder`` (raise it ``from cause``)."""
    try:
        free = format_bytes(_free_bytes(folder))
    except OSError:
        free = "unknown"
    error = TempSpaceError(
        cause.errno or errno.ENOSPC,
        f"no room for a {format_bytes(nbytes)} array in {folder!r} ({free} free): pass "
        "Parallel(temp_folder=...) or set FORKLIFT_TEMP_FOLDER to a folder with more "
        "space, or max_nbytes=None to send arrays by pickling instead",
        folder=folder,
        nbytes=nbytes,
    )
    error.__cause__ = cause
    return error


NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def _remove(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    with _lock:
        _live_folders.discard(folder)


@atexit.register
def _remove_live_folders() -> None:
    owner = f"{FOLDER_PREFIX}{os.getpid()}-"
    with _lock:
        folders = list(_live_folders)
    for folder in folders:
        # A forked child inherits the set; only the owner removes its folders.
        if os.path.basename(folder).startswith(owner):
            _remove(folder)
