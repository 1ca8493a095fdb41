"""The local store's folder layout: its names, the rules a path must keep, and walking it.

:mod:`.local` documents the layout itself; this module is where its names are spelled and
where a path is refused if it would leave the cache folder or mix with the store's own files
(names starting with ``.`` or ``code-``). Listing walks the folders as the layout says: every
``<key>.entry`` file, and the entry folders of the old layout (:mod:`.legacy`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from forklift.cache.stores import legacy
from forklift.cache.stores.base import CallId, ItemInfo
from forklift.cache.stores.locks import remove_if_abandoned
from forklift.errors import ConfigurationError

__all__ = [
    "CLAIM",
    "ENTRY",
    "RECORD",
    "ROOT",
    "SHARD_CHARACTERS",
    "SIDE",
    "STALE_TEMP_SECONDS",
    "VERSION_PREFIX",
    "check_key",
    "entries_of_version",
    "is_plain_part",
    "is_version_dir",
    "list_version",
    "describe_entry",
    "remove_tree",
    "sweep_stale_temporaries",
]

ROOT = "forklift"
ENTRY = ".entry"
SIDE = ".fkl"
CLAIM = ".claim"
RECORD = "function.json"
VERSION_PREFIX = "code-"
SHARD_CHARACTERS = 1  # entries are sharded by the first hex digit of their key: 16 folders
STALE_TEMP_SECONDS = 3600


def check_key(key: str, root: Path) -> None:
    # Letters and digits only (every key Memory makes: hex digests) are plain: one C call.
    if len(key) < 2 or not (key.isalnum() or is_plain_part(key)):
        raise ConfigurationError(
            f"call key {key!r} cannot name an entry inside the cache folder {root}; "
            "keys are made by Memory - a store user must give plain names"
        )


def is_plain_part(part: str) -> bool:
    """A name that stays one folder below its parent and is not one of the store's own."""
    return (
        bool(part)
        and "/" not in part
        and "\\" not in part
        and "\x00" not in part
        and not part.startswith((".", VERSION_PREFIX))
    )


def is_version_dir(path: Path) -> bool:
    # The prefix keeps versions apart from the folders of nested functions ("f/_locals_/g").
    return path.name.startswith(VERSION_PREFIX) and path.is_dir()


def entries_of_version(version_dir: Path) -> Iterator[Path]:
    """Every entry: ``<key>.entry`` files, and ``<key>/`` folders of the old layout."""
    for shard in version_dir.iterdir():
        if shard.name.startswith(".") or not shard.is_dir():
            continue
        sweep_stale_temporaries(shard)
        for entry in shard.iterdir():
            if entry.name.startswith("."):
                continue  # temporaries, and old folders being deleted
            if entry.name.endswith(ENTRY) or entry.is_dir():
                yield entry


def describe_entry(function: tuple[str, ...], version: str, entry: Path) -> ItemInfo:
    if not entry.name.endswith(ENTRY):
        size, last_access, created = legacy.folder_size(entry)
        return ItemInfo(CallId(function, version, entry.name), size, last_access, created)
    status = entry.stat()
    key = entry.name.removesuffix(ENTRY)
    size = status.st_size
    with contextlib.suppress(FileNotFoundError):
        size += entry.with_name(f"{key}{SIDE}").stat().st_size
    last_access = max(status.st_atime, status.st_mtime)
    return ItemInfo(CallId(function, version, key), size, last_access, status.st_mtime)


def list_version(function: tuple[str, ...], version_dir: Path) -> list[ItemInfo]:
    """The entries of one version folder, as ``get_items`` lists them; on the way, files
    half-written by writers that died long ago and claims nobody holds are removed."""
    sweep_stale_temporaries(version_dir)
    version = version_dir.name.removeprefix(VERSION_PREFIX)
    for claim in version_dir.glob(f"*/*{CLAIM}"):
        with contextlib.suppress(OSError):
            if claim.stat().st_mtime < time.time() - STALE_TEMP_SECONDS:
                remove_if_abandoned(str(claim))
    items = []
    for entry in entries_of_version(version_dir):
        with contextlib.suppress(OSError):  # removed meanwhile
            items.append(describe_entry(function, version, entry))
    return items


def sweep_stale_temporaries(folder: Path) -> None:
    """Remove half-written entries (files, or folders of the old layout) of writers that
    died long ago."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    for child in folder.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if child.stat().st_mtime < cutoff:
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()


def remove_tree(path: Path) -> None:
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
