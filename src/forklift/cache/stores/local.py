"""The local filesystem store: the default ``Memory`` backend.

Layout under ``<location>/forklift/``::

    <module parts>/<function>/            one folder per function
        function.json                     its current code fingerprint and where it is defined
        code-<version>/                   one folder per code version
            <key[:2]>/<key>/              one entry: 256 shards keep folders small even with
                output.fkl                  a million entries; the result (forklift format)
                meta.json                   duration, creation time, argument summary
            .locks/<key>.lock             flock files: one computation per key
            .tmp-<random>/                an entry being written

Writes build the entry in a temporary folder beside its destination and ``rename`` it into
place, so readers see all of an entry or none of it, and two writers of one key leave one
entry. A hit sets the entry folder's modification time: it is the "last access" that
least-recently-used eviction sorts by, kept with one ``utime`` call.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from forklift.cache.stores.base import CallId, ItemInfo, ItemLock, StoreBackendBase
from forklift.cache.stores.locks import KeyLock
from forklift.cache.stores.trust import others_can_write
from forklift.errors import CacheEntryDamagedError, CacheWarning, ConfigurationError
from forklift.persist import dump, load

__all__ = ["LocalStore"]

_ROOT = "forklift"
_OUTPUT = "output.fkl"
_META = "meta.json"
_RECORD = "function.json"
_STALE_TEMP_SECONDS = 3600
_VERSION_PREFIX = "code-"
_VERIFIED_REMEMBERED = 100_000


class LocalStore(StoreBackendBase):
    """Cache entries as folders on a local (or shared POSIX) filesystem."""

    def __init__(self) -> None:
        self.root = Path()
        self.location = ""
        self._version_paths: dict[tuple[tuple[str, ...], str], str] = {}
        self._known_dirs: set[str] = set()  # folders this process created or saw
        self._verified: set[tuple[str, int, int, int]] = set()  # mapped entries checked

    def configure(
        self, location: str, verbose: int = 0, backend_options: dict[str, Any] | None = None
    ) -> None:
        if backend_options:
            raise ConfigurationError(
                f"the local store takes no backend_options, got {sorted(backend_options)}"
            )
        self.location = str(location)
        self.root = Path(location) / _ROOT
        self._version_paths.clear()
        self._known_dirs.clear()
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
        if not function or not all(map(_is_plain_part, function)):
            raise ConfigurationError(
                f"cache path parts {function!r} would leave the cache folder {self.root} or "
                "mix with its own files; forklift escapes the names it makes, so this call "
                "came from a store user: give plain folder names"
            )
        return self.root.joinpath(*function)

    def version_dir(self, function: tuple[str, ...], version: str) -> Path:
        if not _is_plain_part(version) or not version:
            raise ConfigurationError(
                f"code version {version!r} cannot name a folder inside the cache folder "
                f"{self.root}; use letters, digits, '_', '-' and '.'"
            )
        return self.function_dir(function) / f"{_VERSION_PREFIX}{version}"

    def entry_dir(self, call_id: CallId) -> Path:
        """The entry's folder; the key is checked, as for every write and delete."""
        _check_key(call_id.key, self.root)
        return Path(self._entry_path(call_id))

    def _entry_path(self, call_id: CallId) -> str:
        # The hit path: plain string joins, with the version folder remembered per function.
        version_path = self._version_paths.get((call_id.function, call_id.version))
        if version_path is None:
            version_path = str(self.version_dir(call_id.function, call_id.version))
            self._version_paths[(call_id.function, call_id.version)] = version_path
        # The key is not checked on this path, which reads (hits): writes, deletes and locks
        # check it (entry_dir, _write_entry, lock_item), as function_dir checks the rest.
        key = call_id.key
        return f"{version_path}/{key[:2]}/{key}"

    # -- entries -----------------------------------------------------------------------------
    def load_item(self, call_id: CallId, mmap_mode: str | None = None) -> Any:
        path = f"{self._entry_path(call_id)}/{_OUTPUT}"
        try:
            if mmap_mode is not None:
                self._verify_once(path)
            # verify: a damaged entry must be detected, even inside raw array bytes.
            return load(path, mmap_mode=mmap_mode, verify=True)
        except FileNotFoundError:
            raise KeyError(call_id) from None
        except Exception as error:
            if not os.path.exists(path):
                raise KeyError(call_id) from None  # removed while we read it
            detail = str(error).replace(f"{path}: ", "")  # persist errors name the file too
            raise CacheEntryDamagedError(f"cannot read cache entry {path}: {detail}") from error

    def _verify_once(self, path: str) -> None:
        """Check every checksum of an entry that is about to be memory-mapped.

        Mapped arrays are not read at load time, so ``load(verify=True)`` cannot check them;
        a plain verified load (read once, then dropped) does, once per entry file and
        process: the file's identity (inode, size, modification time) is remembered, and a
        replaced file is verified again.
        """
        status = os.stat(path)
        stamp = (path, status.st_ino, status.st_size, status.st_mtime_ns)
        if stamp in self._verified:
            return
        load(path, verify=True)
        if len(self._verified) >= _VERIFIED_REMEMBERED:
            self._verified.clear()
        self._verified.add(stamp)

    def dump_item(
        self, call_id: CallId, value: Any, metadata: dict[str, Any], compress: Any = False
    ) -> int:
        try:
            return self._write_entry(call_id, value, metadata, compress)
        except FileNotFoundError:
            # Folders this process remembered were removed (another process cleared the
            # cache or evicted the function): forget them and write once more.
            self._known_dirs.clear()
            return self._write_entry(call_id, value, metadata, compress)

    def _write_entry(
        self, call_id: CallId, value: Any, metadata: dict[str, Any], compress: Any
    ) -> int:
        _check_key(call_id.key, self.root)
        destination = self._entry_path(call_id)
        version_dir = os.path.dirname(os.path.dirname(destination))
        staging = f"{version_dir}/.tmp-{uuid.uuid4().hex}"
        self._make_dirs(version_dir)
        os.mkdir(staging)
        try:
            # The staging folder is what makes the entry appear atomically, so the files
            # inside are written plainly (no temporary file and rename of their own).
            with open(f"{staging}/{_OUTPUT}", "wb") as output:
                dump(value, output, compress=compress)
                size = output.tell()
            with open(f"{staging}/{_META}", "w", encoding="utf-8") as meta:
                size += meta.write(json.dumps(metadata, default=repr))
            self._make_dirs(os.path.dirname(destination))
            try:
                os.rename(staging, destination)
            except OSError:
                if not os.path.exists(destination):
                    raise
                # Another writer stored this key first; its entry is as good as ours.
        finally:
            if os.path.exists(staging):
                shutil.rmtree(staging, ignore_errors=True)
        return size

    def _make_dirs(self, folder: str) -> None:
        if folder not in self._known_dirs:
            os.makedirs(folder, exist_ok=True)
            self._known_dirs.add(folder)

    def contains_item(self, call_id: CallId) -> bool:
        return os.path.exists(f"{self._entry_path(call_id)}/{_OUTPUT}")

    def get_metadata(self, call_id: CallId) -> dict[str, Any] | None:
        try:
            with open(f"{self._entry_path(call_id)}/{_META}", encoding="utf-8") as file:
                data = json.load(file)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def clear_item(self, call_id: CallId) -> None:
        _remove_tree(self.entry_dir(call_id))
        self._known_dirs.discard(self._entry_path(call_id))

    def entry_stamp(self, call_id: CallId) -> object | None:
        try:
            status = os.stat(f"{self._entry_path(call_id)}/{_OUTPUT}")
        except OSError:
            return None
        return (status.st_ino, status.st_size, status.st_mtime_ns)

    def item_info(self, call_id: CallId) -> ItemInfo | None:
        try:
            return _item_info(call_id.function, call_id.version, self.entry_dir(call_id))
        except OSError:
            return None

    def touch(self, call_id: CallId) -> None:
        with contextlib.suppress(OSError):  # a read-only cache still serves hits
            os.utime(self._entry_path(call_id))

    def lock_item(self, call_id: CallId, timeout: float | None) -> ItemLock:
        version_dir = self.version_dir(call_id.function, call_id.version)
        _check_key(call_id.key, self.root)
        return KeyLock(version_dir / ".locks" / f"{call_id.key}.lock", timeout)

    # -- functions -----------------------------------------------------------------------------
    def read_function_record(self, function: tuple[str, ...]) -> dict[str, Any] | None:
        try:
            data = json.loads((self.function_dir(function) / _RECORD).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_function_record(self, function: tuple[str, ...], record: dict[str, Any]) -> None:
        folder = self.function_dir(function)
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".{_RECORD}.{uuid.uuid4().hex}"
        staging.write_text(json.dumps(record, indent=1))
        os.replace(staging, folder / _RECORD)

    def drop_other_versions(self, function: tuple[str, ...], keep: str) -> int:
        dropped = 0
        folder = self.function_dir(function)
        if not folder.is_dir():
            return 0
        for child in folder.iterdir():
            if _is_version_dir(child) and child.name != f"{_VERSION_PREFIX}{keep}":
                dropped += sum(1 for _ in _entries_of_version(child))
                _remove_tree(child)
                self._known_dirs.clear()
        return dropped

    def clear_path(self, function: tuple[str, ...]) -> None:
        _remove_tree(self.function_dir(function))
        self._known_dirs.clear()

    def clear(self) -> None:
        _remove_tree(self.root)
        self._known_dirs.clear()
        with contextlib.suppress(OSError):  # an emptied cache is still a cache
            self.root.mkdir(exist_ok=True)

    def iter_functions(self) -> Iterator[tuple[str, ...]]:
        """Every function with a record or with stored entries (a folder of versions)."""
        for folder, subfolders, files in os.walk(self.root):
            if _RECORD in files or any(name.startswith(_VERSION_PREFIX) for name in subfolders):
                yield Path(folder).relative_to(self.root).parts
            # Do not descend into versions (entries) or hidden folders (locks, staging).
            subfolders[:] = sorted(
                name for name in subfolders if not name.startswith((_VERSION_PREFIX, "."))
            )

    def get_items(self) -> list[ItemInfo]:
        items = []
        for function in self.iter_functions():
            folder = self.function_dir(function)
            for version_dir in folder.iterdir():
                if not _is_version_dir(version_dir):
                    continue
                _sweep_stale_temporaries(version_dir)
                version = version_dir.name.removeprefix(_VERSION_PREFIX)
                for entry in _entries_of_version(version_dir):
                    with contextlib.suppress(OSError):  # removed meanwhile
                        items.append(_item_info(function, version, entry))
        return items


def _check_key(key: str, root: Path) -> None:
    if len(key) < 2 or not _is_plain_part(key):
        raise ConfigurationError(
            f"call key {key!r} cannot name an entry inside the cache folder {root}; "
            "keys are made by Memory - a store user must give plain names"
        )


def _is_plain_part(part: str) -> bool:
    """A name that stays one folder below its parent and is not one of the store's own."""
    return (
        bool(part)
        and "/" not in part
        and "\\" not in part
        and "\x00" not in part
        and not part.startswith((".", _VERSION_PREFIX))
    )


def _is_version_dir(path: Path) -> bool:
    # The prefix keeps versions apart from the folders of nested functions ("f/_locals_/g").
    return path.name.startswith(_VERSION_PREFIX) and path.is_dir()


def _entries_of_version(version_dir: Path) -> Iterator[Path]:
    for shard in version_dir.iterdir():
        if shard.name.startswith(".") or not shard.is_dir():
            continue
        for entry in shard.iterdir():
            if entry.is_dir():
                yield entry


def _item_info(function: tuple[str, ...], version: str, entry: Path) -> ItemInfo:
    status = entry.stat()
    size = sum(child.stat().st_size for child in entry.iterdir())
    created = (entry / _META).stat().st_mtime
    return ItemInfo(CallId(function, version, entry.name), size, status.st_mtime, created)


def _sweep_stale_temporaries(version_dir: Path) -> None:
    """Remove half-written entries of writers that died long ago."""
    cutoff = time.time() - _STALE_TEMP_SECONDS
    for child in version_dir.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)


def _remove_tree(path: Path) -> None:
    """Remove ``path`` so that concurrent readers never see it half-deleted: rename it
    aside first (atomic), then delete the renamed copy."""
    if not path.exists():
        return
    doomed = path.with_name(f".deleting-{path.name}-{uuid.uuid4().hex}")
    try:
        os.rename(path, doomed)
    except OSError:
        if not path.exists():
            return
        doomed = path
    shutil.rmtree(doomed, ignore_errors=True)
