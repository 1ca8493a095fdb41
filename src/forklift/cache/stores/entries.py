"""The local store's entry file: one file per cached call, its metadata in a header.

Layout of ``<key>.entry`` (all integers little-endian)::

    offset  size  field
         0     4  magic b"FKE1"
         4     1  kind: INLINE (the result pickled right after the metadata) or
                  SIDE (the result is ``<key>.fkl`` beside it, in forklift's persist format)
         5     3  zero
         8     4  metadata length (UTF-8 JSON: duration, creation time, argument summary)
        12     8  payload length (the pickle; 0 for SIDE)
        20     4  CRC-32 of metadata + payload
        24        metadata, then payload

Why one file: a miss used to write a folder (``mkdir`` a staging folder, two files, rename
the folder: about ten file operations, most of the 180-660 µs a miss cost). One file is
written with one ``write`` and published with one ``rename`` (see :mod:`.locks`: the file is
the key's claim file until then). Why an inline pickle for results without arrays: reading it
needs ``pickle`` alone, so the first hit in a fresh process imports neither numpy nor the
persist reader (about 110 ms before). Results that hold buffers (numpy arrays, anything that
pickles out of band with protocol 5) or that should be compressed keep the persist format,
in a side file: memory maps need the arrays at aligned offsets of a file of their own, and
persist's checksums cover them. The CRC-32 (zlib's, about 1 GB/s here) plays the role the
persist checksums play for side files: a damaged entry is detected, never unpickled silently.

Rejected: persist's format for every result (its reader allocates with numpy); the metadata
in a second file (one more open per miss and per validated hit); xxh3 for the checksum (an
optional dependency for a few µs on results that are small by construction).
"""

from __future__ import annotations

import json
import pickle
import struct
import zlib
from json.encoder import encode_basestring_ascii as _quote
from typing import Any, NamedTuple

__all__ = [
    "HEADER",
    "INLINE",
    "SIDE",
    "DamagedEntry",
    "Entry",
    "decode",
    "encode",
    "pickle_plain",
    "read_metadata",
]

MAGIC = b"FKE1"
INLINE = 0
SIDE = 1
HEADER = struct.Struct("<4sB3xIQI")


class DamagedEntry(ValueError):
    """The bytes are not a whole, intact entry."""


class Entry(NamedTuple):
    kind: int
    metadata: bytes  # JSON, decoded only when asked for
    payload: memoryview  # the pickle (INLINE), empty for SIDE


# Types whose pickle never holds an out-of-band buffer: no buffer count set up for them.
_IN_BAND = frozenset({int, float, complex, str, bytes, bool, type(None)})


def pickle_plain(value: Any) -> bytes | None:
    """``value`` pickled, or None when it holds out-of-band buffers (arrays) or cannot be
    pickled by the standard pickler: such results go to a side file in persist's format."""
    if type(value) in _IN_BAND:
        return pickle.dumps(value, protocol=5)
    buffers = 0

    def count(_: pickle.PickleBuffer) -> None:
        nonlocal buffers
        buffers += 1
        # None: the buffer stays out of band, so a 100 MB array is not copied to find out.

    try:
        payload = pickle.dumps(value, protocol=5, buffer_callback=count)
    except Exception:
        return None
    return None if buffers else payload


# One encoder for every entry: ``json.dumps(..., default=repr)`` builds a new one per call.
_METADATA = json.JSONEncoder(default=repr)


def encode(kind: int, metadata: dict[str, Any], payload: bytes = b"") -> bytes:
    meta = _metadata_json(metadata).encode()
    checksum = zlib.crc32(payload, zlib.crc32(meta))
    return b"".join((HEADER.pack(MAGIC, kind, len(meta), len(payload), checksum), meta, payload))


def _metadata_json(metadata: dict[str, Any]) -> str:
    """``metadata`` as JSON. What Memory stores (two finite floats and the arguments' reprs)
    is formatted directly, to the text the encoder writes: the encoder took 5-8 µs of a miss
    (it is set up anew for each call), the direct form 2-3 µs."""
    if len(metadata) == 3:
        duration = metadata.get("duration")
        created = metadata.get("time")
        arguments = metadata.get("input_args")
        if (
            type(duration) is float
            and type(created) is float
            and type(arguments) is dict
            and duration - duration == 0.0  # finite: repr() is then JSON
            and created - created == 0.0
        ):
            parts = []
            for name, value in arguments.items():
                if type(name) is not str or type(value) is not str:
                    break
                parts.append(f"{_quote(name)}: {_quote(value)}")
            else:
                inside = ", ".join(parts)
                return (
                    f'{{"duration": {duration!r}, "time": {created!r}, "input_args": {{{inside}}}}}'
                )
    return _METADATA.encode(metadata)


def decode(data: bytes) -> Entry:
    """The entry held in ``data``; raises :class:`DamagedEntry` unless it is whole and intact."""
    if len(data) < HEADER.size:
        raise DamagedEntry(f"the file is {len(data)} bytes long, shorter than an entry header")
    magic, kind, meta_length, payload_length, checksum = HEADER.unpack_from(data)
    if magic != MAGIC or kind not in (INLINE, SIDE):
        raise DamagedEntry("the file does not start with a forklift cache entry header")
    if len(data) != HEADER.size + meta_length + payload_length:
        raise DamagedEntry(
            f"the file is {len(data)} bytes long, its header announces "
            f"{HEADER.size + meta_length + payload_length}"
        )
    view = memoryview(data)
    meta = view[HEADER.size : HEADER.size + meta_length]
    payload = view[HEADER.size + meta_length :]
    if zlib.crc32(payload, zlib.crc32(meta)) != checksum:
        raise DamagedEntry("its checksum does not match its content (the file was damaged)")
    return Entry(kind, bytes(meta), payload)


def read_metadata(entry: Entry) -> dict[str, Any] | None:
    try:
        data = json.loads(entry.metadata)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
