"""Entries written by forklift before the single-file format: read as hits, never written.

Until the entry file (:mod:`.entries`), an entry was a folder ``<key[:2]>/<key>/`` holding
``output.fkl`` (the result, persist's format) and ``meta.json``, with the folder's
modification time as its last access. Caches written then keep serving hits: the local store
looks here after a miss on the new file, lists these entries, evicts and clears them; it
never writes them, so a recomputed key moves to the new format. Whether a version folder
holds any is looked at once per store (:func:`present`: one listing of the version folder),
so a miss in a folder without them does not pay two failed ``stat`` calls (one on the first
look, one on the second, under the key's claim) - the old path's were the longest lookups
of a miss. An old entry put into a folder after the store looked is not seen as a hit by
that store (nothing writes them since; tests put them in by hand). Delete this module (and
its calls in :mod:`.local`) once such caches are gone; ``.locks/`` folders of that time are
ignored and removed by ``clear``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = [
    "OUTPUT",
    "SHARD_CHARACTERS",
    "folder_size",
    "metadata",
    "output_path",
    "present",
    "stamp",
    "touch",
]

OUTPUT = "output.fkl"
SHARD_CHARACTERS = 2  # old entries were sharded by two hex digits: <key[:2]>/<key>/
META = "meta.json"


def present(version_path: str) -> bool:
    """Whether the version folder at ``version_path`` holds shard folders of this layout
    (two hex digits; the entry files' shards are one)."""
    try:
        with os.scandir(version_path) as children:
            return any(len(child.name) == SHARD_CHARACTERS and child.is_dir() for child in children)
    except OSError:  # not made yet (a fresh cache), or unreadable: nothing old to serve
        return False


def output_path(stem: str) -> str:
    """The result file of the old entry at ``stem`` (``.../<key[:2]>/<key>``)."""
    return f"{stem}/{OUTPUT}"


def metadata(stem: str) -> dict[str, Any] | None:
    try:
        with open(f"{stem}/{META}", encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def stamp(stem: str) -> object | None:
    try:
        status = os.stat(output_path(stem))
    except OSError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns)


def touch(stem: str) -> None:
    with contextlib.suppress(OSError):
        os.utime(stem)


def folder_size(entry: Path) -> tuple[int, float, float]:
    """(bytes, last access, creation time) of an old entry folder."""
    status = entry.stat()
    size = sum(child.stat().st_size for child in entry.iterdir())
    created = (entry / META).stat().st_mtime
    return size, status.st_mtime, created
