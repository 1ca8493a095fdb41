"""The object store's entry format and listings, as pure functions over bytes and names.

An entry is one object::

    FKLOBJ01                 8 bytes, the format's mark and version
    metadata length          4 bytes, big-endian
    result length            8 bytes, big-endian
    metadata                 JSON (duration, time, argument summary)
    result                   forklift's dump format (checksummed; loaded with verify=True)

The lengths let one ranged ``GET`` of the first part tell whether it holds the whole entry,
and a truncated object is told from a whole one without a ``HEAD``. Beside it,
``<key>.seen`` (empty) dates the entry's last access.
"""

from __future__ import annotations

import struct

from forklift.cache.stores.base import CallId, ItemInfo
from forklift.cache.stores.object_client import ObjectInfo
from forklift.errors import CacheEntryDamagedError

__all__ = ["HEADER", "encode_header", "entry_item", "entry_sizes", "items_of"]

_MAGIC = b"FKLOBJ01"
_SIZES = struct.Struct(">IQ")  # metadata length, result length
HEADER = len(_MAGIC) + _SIZES.size


def encode_header(metadata_size: int, result_size: int) -> bytes:
    return _MAGIC + _SIZES.pack(metadata_size, result_size)


def entry_sizes(data: bytes, url: str) -> tuple[int, int]:
    if len(data) < HEADER or not data.startswith(_MAGIC):
        raise CacheEntryDamagedError(f"cannot read cache entry {url}: not a forklift entry")
    metadata_size, result_size = _SIZES.unpack_from(data, len(_MAGIC))
    return int(metadata_size), int(result_size)


def entry_item(call_id: CallId, entry: ObjectInfo, seen: ObjectInfo | None) -> ItemInfo:
    last_access = entry.modified if seen is None else max(seen.modified, entry.modified)
    return ItemInfo(call_id, entry.size, last_access, entry.modified)


def items_of(
    shards: list[tuple[tuple[str, ...], str, str]], listed: list[ObjectInfo]
) -> list[ItemInfo]:
    owners = {path: (function, version) for function, version, path in shards}
    entries: dict[CallId, ObjectInfo] = {}
    seen: dict[CallId, ObjectInfo] = {}
    for info in listed:
        shard, _, name = info.path.rpartition("/")
        owner = owners.get(shard)
        key, dot, suffix = name.rpartition(".")
        if owner is None or not dot:
            continue
        call_id = CallId(owner[0], owner[1], key)
        if suffix == "fkl":
            entries[call_id] = info
        elif suffix == "seen":
            seen[call_id] = info
    return [entry_item(call_id, entry, seen.get(call_id)) for call_id, entry in entries.items()]
