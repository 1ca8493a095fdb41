"""Build hostile files by hand: forklift files with any index, and pickle payloads.

``forklift_file`` writes header, sections, index and trailer itself (checksums computed
the way the format specifies, so the integrity checks pass and the reader has to cope with
what the file *says*). ``Ops`` spells pickle streams opcode by opcode.
"""

from __future__ import annotations

import bz2
import json
import lzma
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import forklift
from forklift.persist import layout

#: (stored bytes, declared raw length, 1 if compressed else 0)
Chunk = tuple[bytes, int, int]


def compress(codec: str, data: bytes) -> bytes:
    """``data`` compressed as forklift's compressor ``codec`` stores one chunk."""
    if codec == "zlib":
        return zlib.compress(data, 9)
    if codec == "gzip":
        packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        return packer.compress(data) + packer.flush()
    if codec == "bz2":
        return bz2.compress(data, 9)
    if codec == "lzma":
        return lzma.compress(data, format=lzma.FORMAT_ALONE)
    if codec == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    if codec == "lz4":
        import lz4.block

        return bytes(lz4.block.compress(data, store_size=False))
    if codec == "zstd":
        import zstandard

        return bytes(zstandard.ZstdCompressor(level=19).compress(data))
    raise ValueError(codec)


CODECS = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4", "zstd")


def forklift_file(
    pickled: bytes | Sequence[Chunk],
    buffers: Sequence[Sequence[Chunk]] = (),
    *,
    codec: str | None = None,
    flags: int = 0,
    checksum: str = "crc32",
    arrays: Sequence[dict[str, Any] | None] = (),
) -> bytes:
    """A complete forklift file whose sections hold exactly the chunks given."""
    out = bytearray(layout.HEADER.pack(layout.MAGIC, *layout.FORMAT_VERSION, flags))

    def section(chunks: Sequence[Chunk]) -> dict[str, Any]:
        out.extend(b"\0" * layout.padding(len(out)))
        entries = []
        for stored, raw, coded in chunks:
            entries.append([len(out), len(stored), raw, coded, layout.checksum(checksum, stored)])
            out.extend(stored)
        return {"length": sum(c[1] for c in chunks), "checksum": checksum, "chunks": entries}

    if isinstance(pickled, bytes):
        pickled = [(pickled, len(pickled), 0)]
    pickle_entry = section(pickled)
    pickle_entry["protocol"] = 5
    buffer_entries = []
    for index, chunks in enumerate(buffers):
        entry = section(chunks)
        meta = arrays[index] if index < len(arrays) else None
        if meta is not None:
            entry["array"] = meta
        buffer_entries.append(entry)
    index_json = {
        "version": list(layout.FORMAT_VERSION),
        "codec": codec,
        "level": 3 if codec else 0,
        "pickle": pickle_entry,
        "buffers": buffer_entries,
    }
    encoded = json.dumps(index_json).encode()
    out.extend(b"\0" * layout.padding(len(out)))
    offset = len(out)
    out.extend(encoded)
    out.extend(
        layout.TRAILER.pack(
            offset, len(encoded), layout.checksum("crc32", encoded), layout.TRAILER_MAGIC
        )
    )
    return bytes(out)


def refresh_checksums(data: bytes) -> bytes:
    """Recompute every chunk checksum and the index CRC (and a recorded length) of a
    (mutated) forklift file.

    Returns ``data`` unchanged when its frame is too damaged to parse.
    """
    try:
        offset, length, _, magic = layout.TRAILER.unpack(data[-layout.TRAILER.size :])
        if magic != layout.TRAILER_MAGIC or offset + length > len(data):
            return data
        index = json.loads(data[offset : offset + length])
        body = bytearray(data[:offset])
        for section in [index["pickle"], *index["buffers"]]:
            for chunk in section["chunks"]:
                start, stored = chunk[0], chunk[1]
                chunk[4] = layout.checksum(section["checksum"], bytes(body[start : start + stored]))
        encoded = json.dumps(index, separators=(",", ":")).encode()
        refreshed = bytearray(
            body
            + encoded
            + layout.TRAILER.pack(
                offset, len(encoded), layout.checksum("crc32", encoded), layout.TRAILER_MAGIC
            )
        )
        if layout.sized_length(data[: layout.HEADER_SIZE]) is not None:  # keep it true
            layout.SIZE_FIELD.pack_into(refreshed, layout.SIZE_OFFSET, len(refreshed))
        return bytes(refreshed)
    except Exception:
        return data


class Ops:
    """A pickle stream written opcode by opcode (protocol 4 framing is not needed)."""

    def __init__(self, protocol: int = 4) -> None:
        self.data = bytearray(b"\x80" + bytes([protocol]))

    def raw(self, data: bytes) -> Ops:
        self.data += data
        return self

    def text(self, value: str) -> Ops:
        encoded = value.encode("utf-8")
        if len(encoded) < 256:
            return self.raw(b"\x8c" + bytes([len(encoded)]) + encoded)
        return self.raw(b"X" + struct.pack("<I", len(encoded)) + encoded)

    def bytes_(self, value: bytes) -> Ops:
        return self.raw(b"B" + struct.pack("<I", len(value)) + value)

    def int_(self, value: int) -> Ops:
        if 0 <= value < 256:
            return self.raw(b"K" + bytes([value]))
        if -(2**31) <= value < 2**31:
            return self.raw(b"J" + struct.pack("<i", value))
        encoded = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return self.raw(b"\x8a" + bytes([len(encoded)]) + encoded)

    def global_(self, module: str, name: str) -> Ops:
        return self.raw(f"c{module}\n{name}\n".encode())

    def stack_global(self, module: str, name: str) -> Ops:
        return self.text(module).text(name).raw(b"\x93")

    def none(self) -> Ops:
        return self.raw(b"N")

    def mark(self) -> Ops:
        return self.raw(b"(")

    def tuple_(self) -> Ops:
        return self.raw(b"t")

    def reduce(self) -> Ops:
        return self.raw(b"R")

    def build(self) -> Ops:
        return self.raw(b"b")

    def stop(self) -> bytes:
        return bytes(self.data + b".")

    def dtype(self, typestr: str, state: tuple[Any, ...] | None = None) -> Ops:
        """``numpy.dtype(typestr, False, True)``, with a BUILD of ``state`` if given."""
        self.global_("numpy", "dtype").mark().text(typestr).raw(b"\x89\x88").tuple_().reduce()
        if state is not None:
            self.mark()
            for item in state:
                if item is None:
                    self.none()
                elif isinstance(item, str):
                    self.text(item)
                else:
                    self.int_(item)
            self.tuple_().build()
        return self


def run_child(code: str, *paths: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (argv: ``paths``), forklift importable."""
    source = str(Path(forklift.__file__).parents[1])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([source, *sys.path])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )
