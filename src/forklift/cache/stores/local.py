"""The local filesystem store: the default ``Memory`` backend.

Layout under ``<location>/forklift/``::

    <module parts>/<function>/            one folder per function
        function.json                     its current code fingerprint and where it is defined
        code-<version>/                   one folder per code version
            <key[:1]>/                    16 shards (see below)
                <key>.entry                 one entry: metadata header + pickled result
                                            (:mod:`.entries` has the format)
                <key>.fkl                   a result holding arrays, in persist's format
                <key>.claim                 a key being computed (:mod:`.locks`)
            <key[:2]>/<key>/              an entry of the old layout (:mod:`.legacy`)

A miss claims the key (creates ``<key>.claim``), computes, writes the entry into the claim
and renames it to ``<key>.entry``: readers see a whole entry or none, two writers of one key
leave one entry, and an uncontended miss creates one file (it created four: a lock file, a
staging folder and its two files) in eight system calls - :mod:`.locks` lists them, with
what each costs and what was cut. A hit reads one file. The entry's access time is its last
access, which least-recently-used eviction sorts by (set explicitly by ``touch``, so
``noatime`` mounts work); its modification time is its creation.

Shards: 16, so the first misses of a new code version create at most 16 folders. With 256
(the old layout's), a fresh cache's first few hundred misses each created a shard folder as
well as the entry - two creations, not one: the miss benchmark (200 keys, fresh folder)
measured 0.47 times joblib's overhead then. 16 folders still hold a million entries as
62,500 files each, which ext4's and xfs's hashed directories look up in constant time.

Rejected: no shards (one folder of a million files is slow to list on network
filesystems); a pack file of many entries (one creation per process, not per miss, but
eviction and atomic replacement would need an index and compaction: a database, which is
what the cache must not require; and each entry's own times are what LRU eviction reads).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from forklift.cache.stores import entries, legacy
from forklift.cache.stores.base import CallId, ItemInfo, ItemLock, StoreBackendBase
from forklift.cache.stores.files import (
    READ,
    persist_dump,
    persist_load,
    read_file,
    read_opened,
    verify_once,
)
from forklift.cache.stores.layout import (
    CLAIM,
    ENTRY,
    RECORD,
    ROOT,
    SHARD_CHARACTERS,
    SIDE,
    VERSION_PREFIX,
    check_key,
    describe_entry,
    entries_of_version,
    is_plain_part,
    is_version_dir,
    list_version,
    remove_tree,
)
from forklift.cache.stores.locks import KeyLock, held_claim
from forklift.cache.stores.trust import others_can_write
from forklift.errors import CacheEntryDamagedError, CacheWarning, ConfigurationError

__all__ = ["MISSES_BEFORE_ACCESS", "LocalStore"]

MISSES_BEFORE_ACCESS = 2
# access() checks with the effective ids, as open() and stat() do, where the platform can.
_EFFECTIVE = os.access in os.supports_effective_ids


class LocalStore(StoreBackendBase):
    """Cache entries as files on a local (or shared POSIX) filesystem."""

    # A stored result is read back by the next hit (20-30 µs, once) rather than kept hot at
    # every miss (its pickle, an fstat for its stamp: 7 µs of CPU of a ~110 µs miss on
    # tmpfs, interleaved runs): most misses are not hit again in the process that stored them.
    keep_stored_hot = False

    def __init__(self) -> None:
        self.root = Path()
        self.location = ""
        self._version_paths: dict[tuple[tuple[str, ...], str], str] = {}
        self._known_dirs: set[str] = set()  # folders this process created or saw
        # Version folders -> whether they hold entries of the old layout (looked at once).
        self._old_layout: dict[str, bool] = {}
        self._last_miss: tuple[CallId | None, str, str | None] = (None, "", None)
        self._misses_in_a_row = 0  # first looks that found nothing (see _find)

    def configure(
        self, location: str, verbose: int = 0, backend_options: dict[str, Any] | None = None
    ) -> None:
        if backend_options:
            raise ConfigurationError(
                f"the local store takes no backend_options, got {sorted(backend_options)}"
            )
        self.location = str(location)
        self.root = Path(location) / ROOT
        self._version_paths.clear()
        self._last_miss = (None, "", None)
        self._forget_folders()
        reason = others_can_write(Path(location), self.root)
        if reason is not None:
            warnings.warn(
                f"the cache folder {location} is writable by other users: {reason}. Its "
                "entries are unpickled when read, so whoever can write there can run code in "
                "this process; use a folder only you can write to (chmod o-w), or silence "
                "this CacheWarning if you trust everyone who can",
                CacheWarning,
                stacklevel=4,
            )

    # -- paths -----------------------------------------------------------------------------
    def function_dir(self, function: tuple[str, ...]) -> Path:
        """The folder of one function; every path the store touches is built here or below,
        so this is where names that would leave the cache folder are refused."""
        if not function or not all(map(is_plain_part, function)):
            raise ConfigurationError(
                f"cache path parts {function!r} would leave the cache folder {self.root} or "
                "mix with its own files; forklift escapes the names it makes, so this call "
                "came from a store user: give plain folder names"
            )
        return self.root.joinpath(*function)

    def version_dir(self, function: tuple[str, ...], version: str) -> Path:
        if not is_plain_part(version) or not version:
            raise ConfigurationError(
                f"code version {version!r} cannot name a folder inside the cache folder "
                f"{self.root}; use letters, digits, '_', '-' and '.'"
            )
        return self.function_dir(function) / f"{VERSION_PREFIX}{version}"

    def entry_dir(self, call_id: CallId) -> Path:
        """The entry's path without its suffix (``.../<key[:1]>/<key>``); the key is checked,
        as for every write and delete."""
        check_key(call_id.key, self.root)
        return Path(self._stem(call_id))

    def entry_path(self, call_id: CallId) -> Path:
        """The entry's file (``.../<key[:1]>/<key>.entry``)."""
        return Path(f"{self.entry_dir(call_id)}{ENTRY}")

    def _version_path(self, call_id: CallId) -> str:
        # The hit path: plain string joins, with the version folder remembered per function.
        version_path = self._version_paths.get((call_id.function, call_id.version))
        if version_path is None:
            version_path = str(self.version_dir(call_id.function, call_id.version))
            self._version_paths[(call_id.function, call_id.version)] = version_path
        return version_path

    def _stem(self, call_id: CallId) -> str:
        # The key is not checked on this path, which reads (hits): writes, deletes and locks
        # check it (entry_dir, dump_item, lock_item), as function_dir checks the rest.
        key = call_id.key
        return f"{self._version_path(call_id)}/{key[:SHARD_CHARACTERS]}/{key}"

    def _miss_paths(self, call_id: CallId) -> tuple[str, str | None]:
        """:meth:`_stem`, with the key checked, and :meth:`_old_output`, for the steps of a
        miss (lock, look again, write): the last call's are remembered, by the identity of
        its CallId, so a miss checks its key and asks for the old layout once. Hits do not
        use it (one stem each: remembering it cost more)."""
        last = self._last_miss
        if last[0] is call_id:
            return last[1], last[2]
        key = call_id.key
        check_key(key, self.root)
        version_path = self._version_path(call_id)
        stem = f"{version_path}/{key[:SHARD_CHARACTERS]}/{key}"  # _stem's, inline
        old = None
        if self._old_layout.get(version_path) is not False:  # _old_output's first look
            old = self._old_output(call_id, stem)
        self._last_miss = (call_id, stem, old)
        return stem, old

    def _old_stem(self, call_id: CallId) -> str:
        """Where the old layout kept this entry's folder (:mod:`.legacy`)."""
        key = call_id.key
        return f"{self._version_path(call_id)}/{key[: legacy.SHARD_CHARACTERS]}/{key}"

    def _old_output(self, call_id: CallId, stem: str) -> str | None:
        """The result file of this call's entry (at ``stem`` in the new layout) in the old
        layout, or None when its version folder holds no old entries (looked at once per
        store and version: a miss then makes no lookups in the old layout)."""
        version_path = stem[: -len(call_id.key) - SHARD_CHARACTERS - 2]  # less "/<shard>/<key>"
        present = self._old_layout.get(version_path)
        if present is None:
            present = self._old_layout[version_path] = legacy.present(version_path)
        return legacy.output_path(self._old_stem(call_id)) if present else None

    def _forget_folders(self) -> None:
        """Forget what this store knows of its folders (they were removed)."""
        self._known_dirs.clear()
        self._old_layout.clear()

    # -- entries -----------------------------------------------------------------------------
    def load_item(self, call_id: CallId, mmap_mode: str | None = None) -> Any:
        found, value = self._find(call_id, mmap_mode)
        if not found:
            raise KeyError(call_id)
        return value

    def _find(self, call_id: CallId, mmap_mode: str | None = None) -> tuple[bool, Any]:
        """:meth:`find_item`: a miss is a return value, not a ``KeyError`` raised through
        two frames and caught (1-2 µs of a miss, measured in place).

        After :data:`MISSES_BEFORE_ACCESS` misses in a row, the entry is looked for with
        ``access()`` before it is opened: a missing file is then a False, not an exception
        (in place, between a miss's other system calls on tmpfs: a failed ``open`` 6.8 µs,
        a failed ``access`` 4.0). The hit that ends such a run makes one more system call
        (``access``, then ``open``); hits that follow hits open at once, as before.
        """
        key = call_id.key
        version_path = self._version_path(call_id)
        stem = f"{version_path}/{key[:SHARD_CHARACTERS]}/{key}"  # _stem's, inline
        path = f"{stem}{ENTRY}"
        data = None
        if self._misses_in_a_row < MISSES_BEFORE_ACCESS or os.access(
            path, os.F_OK, effective_ids=_EFFECTIVE
        ):
            try:
                data = read_opened(os.open(path, READ))  # opened here: no frame to raise through
            except FileNotFoundError:
                data = None  # (suppress() would cost a context manager per look)
        if data is None:
            self._misses_in_a_row += 1
            if self._old_layout.get(version_path) is False:  # _old_output's first look
                return False, None
            old = self._old_output(call_id, stem)
            if old is None or not os.path.exists(old):  # a miss: no persist load attempted
                return False, None
            return self._load_file(old, mmap_mode)
        self._misses_in_a_row = 0
        try:
            entry = entries.decode(data)
            if entry.kind == entries.INLINE:
                return True, pickle.loads(entry.payload)
        except Exception as error:
            raise CacheEntryDamagedError(f"cannot read cache entry {path}: {error}") from error
        return self._load_file(f"{stem}{SIDE}", mmap_mode)

    find_item = _find

    def __init_subclass__(cls, **options: Any) -> None:
        super().__init_subclass__(**options)
        if cls.load_item is not LocalStore.load_item and cls.find_item is LocalStore._find:
            # A subclass's own load_item is what Memory's first look must hear.
            cls.find_item = StoreBackendBase.find_item

    def _load_file(self, path: str, mmap_mode: str | None) -> tuple[bool, Any]:
        """A result in persist's format: a side file, or an entry of the old layout."""
        try:
            if mmap_mode is not None:
                verify_once(path)
            # verify: a damaged entry must be detected, even inside raw array bytes.
            return True, persist_load(path, mmap_mode=mmap_mode, verify=True)
        except FileNotFoundError:
            return False, None
        except Exception as error:
            if not os.path.exists(path):
                return False, None  # removed while we read it
            detail = str(error).replace(f"{path}: ", "")  # persist errors name the file too
            raise CacheEntryDamagedError(f"cannot read cache entry {path}: {detail}") from error

    def dump_item(
        self, call_id: CallId, value: Any, metadata: dict[str, Any], compress: Any = False
    ) -> int:
        stem = self._miss_paths(call_id)[0]  # the key is checked with the stem
        payload = None if compress else entries.pickle_plain(value)
        size = 0
        if payload is None:  # arrays, compression, or what only persist can pickle
            size = self._twice(lambda: self._write_side_file(stem, value, compress))
            data = entries.encode(entries.SIDE, metadata)
        else:
            data = entries.encode(entries.INLINE, metadata, payload)
        claim = held_claim(f"{stem}{CLAIM}")
        if claim is not None:
            try:
                # The claim file becomes the entry (in its folder, which it proves is there):
                # one write, one rename.
                claim.publish(data)
                return size + len(data)
            except OSError:
                pass  # removed with the cache meanwhile: write it the other way
        return size + self._twice(lambda: self._write_staged(stem, data))

    def _twice(self, write: Callable[[], int]) -> int:
        """``write()``, once more if it finds folders this process remembered removed
        (another process cleared the cache or evicted the function)."""
        try:
            return write()
        except FileNotFoundError:
            self._forget_folders()
            return write()

    def _write_staged(self, stem: str, data: bytes) -> int:
        """Write an entry without a claim (the lock timed out, or a store user writes
        directly): a temporary file renamed into place, which replaces an entry another
        writer may have stored."""
        shard = os.path.dirname(stem)
        self._make_dirs(shard)
        destination = f"{stem}{ENTRY}"
        staging = f"{shard}/.tmp-{uuid.uuid4().hex}{ENTRY}"
        try:
            with open(staging, "wb") as file:
                file.write(data)
                file.flush()
                now = time.time_ns()  # as KeyLock.publish does
                os.utime(file.fileno(), ns=(now, now))
            os.rename(staging, destination)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staging)
        return len(data)

    def _write_side_file(self, stem: str, value: Any, compress: Any) -> int:
        """Write the result in persist's format to ``<key>.fkl``, renamed into place before
        the entry that points at it is published (the entry file is the commit)."""
        shard = os.path.dirname(stem)
        self._make_dirs(shard)
        staging = f"{shard}/.tmp-{uuid.uuid4().hex}{SIDE}"
        try:
            with open(staging, "wb") as output:
                persist_dump(value, output, compress=compress)
                size = output.tell()
            os.rename(staging, f"{stem}{SIDE}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staging)
        return size

    def _make_dirs(self, folder: str) -> None:
        if folder not in self._known_dirs:
            os.makedirs(folder, exist_ok=True)
            self._known_dirs.add(folder)

    def _remake_dirs(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        self._known_dirs.add(folder)

    def contains_item(self, call_id: CallId) -> bool:
        # access(), not stat(): a missing file is a False, not an exception raised and
        # caught (1 µs of each miss on tmpfs). Existence only, as os.path.exists; with the
        # effective ids, as stat() (and the claim's open) use.
        stem, old = self._miss_paths(call_id)
        if os.access(f"{stem}{ENTRY}", os.F_OK, effective_ids=_EFFECTIVE):
            return True
        return old is not None and os.path.exists(old)

    def get_metadata(self, call_id: CallId) -> dict[str, Any] | None:
        stem = self._stem(call_id)
        try:
            data = read_file(f"{stem}{ENTRY}")
        except FileNotFoundError:
            return legacy.metadata(self._old_stem(call_id))
        except OSError:
            return None
        try:
            return entries.read_metadata(entries.decode(data))
        except entries.DamagedEntry:
            return None

    def clear_item(self, call_id: CallId) -> None:
        self.entry_dir(call_id)  # checks the key
        stem = self._stem(call_id)
        for path in (f"{stem}{ENTRY}", f"{stem}{SIDE}"):  # the entry first: it commits
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        remove_tree(Path(self._old_stem(call_id)))  # an entry of the old layout

    def entry_stamp(self, call_id: CallId) -> object | None:
        try:
            status = os.stat(f"{self._stem(call_id)}{ENTRY}")
        except FileNotFoundError:
            return legacy.stamp(self._old_stem(call_id))
        except OSError:
            return None
        # touch() sets the access time only, so the stamp holds across hits.
        return (status.st_ino, status.st_size, status.st_mtime_ns)

    def item_info(self, call_id: CallId) -> ItemInfo | None:
        self.entry_dir(call_id)  # checks the key
        stem = self._stem(call_id)
        try:
            return describe_entry(call_id.function, call_id.version, Path(f"{stem}{ENTRY}"))
        except FileNotFoundError:
            pass
        except OSError:
            return None
        try:
            size, last_access, created = legacy.folder_size(Path(self._old_stem(call_id)))
        except OSError:
            return None
        return ItemInfo(call_id, size, last_access, created)

    def touch(self, call_id: CallId) -> None:
        stem = self._stem(call_id)
        path = f"{stem}{ENTRY}"
        try:
            # The access time is the last access; the modification time (creation, part of
            # the stamp) is kept.
            os.utime(path, ns=(time.time_ns(), os.stat(path).st_mtime_ns))
        except FileNotFoundError:
            legacy.touch(self._old_stem(call_id))
        except OSError:
            pass  # a read-only cache still serves hits

    def lock_item(self, call_id: CallId, timeout: float | None) -> ItemLock:
        stem = self._miss_paths(call_id)[0]
        return KeyLock(f"{stem}{CLAIM}", f"{stem}{ENTRY}", timeout, self._remake_dirs)

    # -- functions -----------------------------------------------------------------------------
    def read_function_record(self, function: tuple[str, ...]) -> dict[str, Any] | None:
        try:
            data = json.loads((self.function_dir(function) / RECORD).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_function_record(self, function: tuple[str, ...], record: dict[str, Any]) -> None:
        folder = self.function_dir(function)
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".{RECORD}.{uuid.uuid4().hex}"
        staging.write_text(json.dumps(record, indent=1))
        os.replace(staging, folder / RECORD)

    def drop_other_versions(self, function: tuple[str, ...], keep: str) -> int:
        dropped = 0
        folder = self.function_dir(function)
        if not folder.is_dir():
            return 0
        for child in folder.iterdir():
            if is_version_dir(child) and child.name != f"{VERSION_PREFIX}{keep}":
                dropped += sum(1 for _ in entries_of_version(child))
                remove_tree(child)
                self._forget_folders()
        return dropped

    def clear_path(self, function: tuple[str, ...]) -> None:
        remove_tree(self.function_dir(function))
        self._forget_folders()

    def clear(self) -> None:
        remove_tree(self.root)
        self._forget_folders()
        with contextlib.suppress(OSError):  # an emptied cache is still a cache
            self.root.mkdir(exist_ok=True)

    def iter_functions(self) -> Iterator[tuple[str, ...]]:
        """Every function with a record or with stored entries (a folder of versions)."""
        for folder, subfolders, files in os.walk(self.root):
            if RECORD in files or any(name.startswith(VERSION_PREFIX) for name in subfolders):
                yield Path(folder).relative_to(self.root).parts
            # Do not descend into versions (entries) or hidden folders (locks, staging).
            subfolders[:] = sorted(
                name for name in subfolders if not name.startswith((VERSION_PREFIX, "."))
            )

    def get_items(self) -> list[ItemInfo]:
        items = []
        for function in self.iter_functions():
            folder = self.function_dir(function)
            for version_dir in folder.iterdir():
                if is_version_dir(version_dir):
                    items.extend(list_version(function, version_dir))
        return items
