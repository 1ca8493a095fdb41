"""The encoder: turns a value into a canonical byte stream and feeds it to a digest.

The stream is built from type-tagged, self-delimiting records (a tag byte, then fixed-width
little-endian numbers, length-prefixed bytes, or nested records), so two different values never
produce the same stream and the stream of a value never depends on the Python version, the
platform, or pickle. :mod:`forklift.hashing.kinds` says which record each type gets.

Small records accumulate in a ``bytearray``; large payloads (array buffers, big ``bytes``) are
flushed and handed to the digest in bounded slices of the original buffer, so hashing a 1 GB
array copies nothing. Unordered containers (dict, set) are encoded as the sorted digests of
their entries, which makes them independent of insertion order and of whether the keys are
comparable with each other.

Containers that can take part in a reference cycle are tracked on the current path; meeting
one again emits a back-reference (how many levels up it was entered) instead of recursing.

Imports nothing from forklift except the :class:`~forklift.hashing.digests.Digest` type.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from forklift.hashing.digests import Digest, Hasher

__all__ = ["ENCODING_VERSION", "Encoder", "Handler", "pack_f64", "pack_i64", "pack_u64"]

ENCODING_VERSION = 1
"""Bump whenever the stream of any value changes; it is the first record of every stream."""

pack_u64: Callable[[int], bytes] = struct.Struct("<Q").pack
pack_i64: Callable[[int], bytes] = struct.Struct("<q").pack
pack_f64: Callable[[float], bytes] = struct.Struct("<d").pack

# The header every stream starts with: a magic word and the encoding version.
HEADER = b"forklift-hash\x00" + pack_u64(ENCODING_VERSION)

# Payloads below this size are copied into the record buffer; larger ones go straight to the
# digest from their own memory.
_DIRECT = 1 << 16
# Slice size when handing a large buffer to the digest: bounds the time between checks of the
# buffer and keeps hashlib's GIL release effective without copying.
CHUNK = 1 << 23
# Flush the record buffer to the digest once it grows past this, so a huge list of small
# objects does not build a huge buffer.
_FLUSH_AT = 1 << 20

Handler = Callable[["Encoder", Any], None]


class Encoder:
    """One hashing run: a record buffer, an optional streaming digest, the current path."""

    __slots__ = ("_depth", "_path", "coerce_mmap", "digest", "handlers", "other", "out", "sink")

    def __init__(
        self,
        digest: Digest,
        *,
        coerce_mmap: bool,
        handlers: dict[type, Handler],
        other: Handler,
    ) -> None:
        self.digest = digest
        self.coerce_mmap = coerce_mmap
        self.handlers = handlers
        self.other = other
        self.out = bytearray()
        self.sink: Hasher | None = None
        self._path: dict[int, int] = {}
        self._depth = 0

    def encode(self, obj: Any) -> None:
        """Append the record of ``obj``."""
        handler = self.handlers.get(type(obj))
        if handler is None:
            self.other(self, obj)
        else:
            handler(self, obj)

    def feed(self, data: Any) -> None:
        """Append raw payload bytes (any C-contiguous byte buffer), without copying large ones."""
        view = memoryview(data)
        if view.nbytes < _DIRECT:
            self.out += view
            return
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        sink = self.flush()
        for start in range(0, len(view), CHUNK):
            sink.update(view[start : start + CHUNK])

    def maybe_flush(self) -> None:
        """Flush the record buffer if it grew large (called inside long loops)."""
        if len(self.out) > _FLUSH_AT:
            self.flush()

    def flush(self) -> Hasher:
        """Hand the record buffer to the streaming digest (started on first use); return it."""
        sink = self.sink
        if sink is None:
            sink = self.sink = self.digest.new()
        if self.out:
            sink.update(self.out)
            # Cleared in place: handlers keep a local reference to ``self.out``.
            del self.out[:]
        return sink

    def finish(self) -> bytes:
        """Return the digest of everything encoded so far."""
        if self.sink is None:
            return self.digest.oneshot(self.out)
        self.sink.update(self.out)
        return self.sink.digest()

    def sub_digest(self, *objs: Any) -> bytes:
        """Digest of the records of ``objs`` alone, on the current path (for unordered parts)."""
        saved_out, saved_sink = self.out, self.sink
        self.out = bytearray()
        self.sink = None
        try:
            for obj in objs:
                self.encode(obj)
            return self.finish()
        finally:
            self.out, self.sink = saved_out, saved_sink

    def enter(self, obj: object) -> bool:
        """Put ``obj`` on the path; if it already is there, emit a back-reference instead.

        Returns False when a back-reference was written (the caller must not encode ``obj``).
        """
        key = id(obj)
        at = self._path.get(key)
        if at is not None:
            self.out += b"^" + pack_u64(self._depth - at)
            return False
        self._path[key] = self._depth
        self._depth += 1
        return True

    def leave(self, obj: object) -> None:
        """Take ``obj`` off the path (after :meth:`enter` returned True)."""
        del self._path[id(obj)]
        self._depth -= 1

    def write_text(self, text: str) -> None:
        """Append a length-prefixed UTF-8 string record body (no tag)."""
        data = text.encode("utf-8", "surrogatepass")
        self.out += pack_u64(len(data))
        self.feed(data)
