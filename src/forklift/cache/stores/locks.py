"""One computation per key across threads and processes: claim files, locked on contention.

The right to compute a key is its *claim file* ``<key>.claim``, beside where the entry will
be. The process that creates it (``O_CREAT | O_EXCL``: exactly one creator) locks it with
``flock`` at once, computes, writes the entry *into the claim file* and renames it to
``<key>.entry``: the claim becomes the entry, so an uncontended miss costs one ``open``, one
``flock``, one ``write`` and one ``rename`` (:meth:`KeyLock.publish`). Only a process that
finds the claim taken waits: it opens the claim and blocks in ``flock`` until the holder
closes it - by publishing, by giving up (the claim is removed), or by dying, since the kernel
drops the locks of a dead process. Then it checks that the claim path still names the file it
locked: if so, the holder died and this process takes the claim over (a crashed writer never
blocks others, however it died); if not, it starts again (usually to find the entry stored).

The invariant: whoever holds the ``flock`` of the file currently at the claim path owns the
key, and only an owner renames or removes that path. Two threads of one process exclude each
other too: ``flock`` locks belong to open file descriptions, and each open makes its own.

What a miss costs - its eight system calls: the first look for the entry (missing: an
``open``, or ``access`` after misses in a row - see ``LocalStore.find_item``), ``open`` of
the claim (``O_CREAT | O_EXCL``), ``flock``, ``access`` of the entry (the second look,
missing), ``pwrite``, ``utimensat``, ``rename``, ``close``. Each is 2-10 µs except the
creation, which is the miss: on the shared test machine's ext4 (mounted without a journal)
``perf`` puts 70% of a creation in ext4's ``recently_deleted`` check, which passes over every
inode of the folder's block group freed in the last 60 s (360 s while its inode-table block
is not yet written back: the kernel's RECENTCY_MIN and RECENTCY_DIRTY), one inode-table lookup
each, from the start of the group at every creation - so a
creation costs 40-80 µs when little was deleted lately and 300-1000 µs after mass deletions
(other jobs' test runs, or the previous benchmark round's clean-up); on tmpfs 8 µs. Cut from
the miss (2026-12-06): two failed lookups in the old layout (:mod:`.legacy`, now looked at
once per version folder), the ``stat`` of the entry after the rename (for the stamp of a
result kept hot, which the local store no longer does at a miss:
``LocalStore.keep_stored_hot``), and Python work around them (JSON set-up, repeated path
joins, ``reprlib``): 145 -> 96 µs of CPU per miss on tmpfs, 158 -> 119 µs on ext4 (medians
of 9 interleaved rounds, load 4-6). Then (issue #16) the Python between the calls, which
runs 2-3 times slower there than in a loop of its own (each system call leaves the caches
and branch predictors cold: measured in place, the entry's encoding took 8 µs, 2.6 in a
loop): the key checked and the paths built once per miss, no exception raised and caught
for a missing entry (``access`` for the second look, and for the first after misses in a
row; ``find_item`` returns a miss), the claim created and locked inline, fewer frames
(arguments and key in one, no layer that only forwards): 96 -> 74 µs per miss on tmpfs,
114 -> 91 µs on ext4 in a calm state (medians of 8-12 interleaved runs of 5 x 200 misses;
joblib 364 and 419). Kept, each for a guarantee: the
``flock`` (uncontended it costs 2 µs; without it a waiter cannot tell a live claimer from a
dead one), the second look (a waiter that finds the key free again must see the entry the
holder published; an entry published between a caller's first look and its claim too), the
``utimensat`` (ext4 stamps files in 4 ms ticks: entries written in one tick would tie in LRU
order, and ``items_limit`` evicts the newest of them as readily as the oldest).

Rejected: a pid written in the claim and polled for liveness (pids are reused and mean nothing
across hosts sharing a folder); a lock file in a ``.locks`` folder taken on every miss (the
previous design: one more file, and an entry folder written beside it); ``fcntl`` record
locks (released when *any* descriptor of the file closes in the process); ``O_TMPFILE`` and
``linkat`` instead of the claim file (the same inode allocation - measured no cheaper, 250-870
µs against 350-820 interleaved - and a computing caller would no longer be visible to racing
callers before it publishes); spare ``O_TMPFILE`` files made ahead by a background thread and
linked in as the claim (``linkat`` of ``/proc/self/fd/N`` fails with ``EEXIST`` as the
creation does): it takes the creation off the miss, but the link costs 20-40 µs itself on
ext4 and the refilling thread contends for the GIL, so misses got slower in a calm state
(prototype, interleaved runs of 3 x 500 misses on ext4: 144-157 µs against 113-119) and
faster only right after mass deletions (527-716 against 906-1170); system calls relative to
a descriptor of the shard folder (4 µs of a miss, for descriptors to keep open and renew
when a folder is removed).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable

from forklift.cache.stores.base import ItemLock

__all__ = ["KeyLock", "held_claim", "remove_if_abandoned"]

_FIRST_SLEEP = 0.002
_LONGEST_SLEEP = 0.1
_CREATE = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_OPEN = os.O_RDWR | os.O_CLOEXEC
_LOCK = fcntl.LOCK_EX | fcntl.LOCK_NB
_held = threading.local()  # claim path -> KeyLock, for the thread that owns the claim


def held_claim(claim_path: str) -> KeyLock | None:
    """The claim this thread owns at ``claim_path`` (the store then writes into it)."""
    claims: dict[str, KeyLock] | None = getattr(_held, "claims", None)
    return None if claims is None else claims.get(claim_path)


class KeyLock(ItemLock):
    """The claim of one key, as a context manager yielding whether this thread owns it.

    Entering yields False after ``timeout`` seconds of waiting, or at once when the claim
    cannot be created (read-only cache): the caller computes without the guarantee rather
    than not at all. Leaving without :meth:`publish` removes the claim, waking the waiters.
    """

    def __init__(
        self,
        claim_path: str,
        entry_path: str,
        timeout: float | None,
        make_folder: Callable[[str], None],
    ) -> None:
        self.claim_path = claim_path
        self.entry_path = entry_path
        self._timeout = timeout
        self._make_folder = make_folder
        self._descriptor: int | None = None
        self._taken_over = False  # the claim was left by a dead holder: it may hold bytes
        self._published = False
        self._claims: dict[str, KeyLock] | None = None  # the entering thread's claims

    def __enter__(self) -> bool:
        # The uncontended claim, inline: create, lock. Anything else - the claim taken, no
        # shard folder yet, a waiter that locked the new claim first, no locks here - goes
        # the general way.
        created = -1
        try:
            created = os.open(self.claim_path, _CREATE, 0o666)
            fcntl.flock(created, _LOCK)
            descriptor: int | None = created
        except OSError:
            descriptor = self._acquire(None if created < 0 else created)
        if descriptor is None:
            return False
        self._descriptor = descriptor
        claims = getattr(_held, "claims", None)
        if claims is None:
            claims = _held.claims = {}
        claims[self.claim_path] = self
        self._claims = claims
        return True

    def __exit__(self, *exc_info: object) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None:
            return
        # The thread leaving may not be the one that entered (asyncio enters in a worker
        # thread): clean the entering thread's map.
        claims = self._claims
        if claims is not None and claims.get(self.claim_path) is self:
            del claims[self.claim_path]
        if not self._published:
            with contextlib.suppress(OSError):  # removed with the cache meanwhile
                os.unlink(self.claim_path)
        os.close(descriptor)  # releases the flock: waiters wake

    def publish(self, data: bytes) -> None:
        """Write ``data`` into the claim and rename it to the entry: the entry appears whole.

        Its times are set from the clock, not left to the filesystem's coarser timestamps
        (4 ms ticks on ext4: entries written in one tick would tie in LRU order).

        Raises ``OSError`` (then the claim is still held, and the caller writes another way).
        """
        descriptor = self._descriptor
        if descriptor is None or self._published:
            raise FileNotFoundError(errno.ENOENT, "the claim is not held", self.claim_path)
        if self._taken_over:
            os.ftruncate(descriptor, 0)
        written = os.pwrite(descriptor, data, 0)
        if written < len(data):  # a short write (a full disk, a signal): the rest
            view = memoryview(data)
            while written < len(view):
                written += os.pwrite(descriptor, view[written:], written)
        now = time.time_ns()
        os.utime(descriptor, ns=(now, now))
        os.rename(self.claim_path, self.entry_path)
        self._published = True

    # -- acquiring --------------------------------------------------------------------------
    def _acquire(self, created: int | None = None) -> int | None:
        """The claim's descriptor, locked; None on timeout or where claims cannot be made.
        ``created``: a claim this thread has just created but not locked."""
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            try:
                descriptor = self._create() if created is None else created
                created = None
            except FileExistsError:
                pass
            except OSError:
                return None  # cannot write here: compute without the guarantee
            else:
                try:
                    if _try_lock(descriptor):
                        return descriptor
                except OSError:  # no locks on this filesystem: no guarantee either
                    os.close(descriptor)
                    with contextlib.suppress(OSError):
                        os.unlink(self.claim_path)
                    return None
                os.close(descriptor)  # a waiter locked it first and owns it now
            try:
                descriptor = os.open(self.claim_path, _OPEN)
            except FileNotFoundError:
                continue  # released meanwhile: try to create it again
            except OSError:
                return None
            if not _wait_lock(descriptor, deadline):
                os.close(descriptor)
                return None
            if _names(self.claim_path, descriptor):
                self._taken_over = True  # its holder died without publishing
                return descriptor
            os.close(descriptor)  # published or given up: look again

    def _create(self) -> int:
        try:
            return os.open(self.claim_path, _CREATE, 0o666)
        except FileNotFoundError:  # the shard folder does not exist yet (or was cleared)
            self._make_folder(os.path.dirname(self.claim_path))
            return os.open(self.claim_path, _CREATE, 0o666)


def remove_if_abandoned(claim_path: str) -> bool:
    """Remove a claim nobody holds (its writer died and no caller came back for the key);
    True if removed. Removing it as its owner would - locked, and still named by its path -
    keeps the invariant: a live holder's claim is never touched."""
    try:
        descriptor = os.open(claim_path, _OPEN)
    except OSError:
        return False
    try:
        if not _try_lock(descriptor) or not _names(claim_path, descriptor):
            return False
        os.unlink(claim_path)
        return True
    except OSError:
        return False
    finally:
        os.close(descriptor)


def _try_lock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, _LOCK)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _wait_lock(descriptor: int, deadline: float | None) -> bool:
    """Lock ``descriptor``, polling with a growing sleep (``flock`` has no timeout)."""
    sleep = _FIRST_SLEEP
    while True:
        try:
            if _try_lock(descriptor):
                return True
        except OSError:
            return False
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(sleep)
        sleep = min(sleep * 2, _LONGEST_SLEEP)


def _names(path: str, descriptor: int) -> bool:
    """Whether ``path`` still names the file open at ``descriptor``."""
    try:
        named = os.stat(path)
    except OSError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_ino, named.st_dev) == (opened.st_ino, opened.st_dev)
