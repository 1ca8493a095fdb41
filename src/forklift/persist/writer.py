"""Writing forklift files: pickle with out-of-band buffers, then chunked, checked sections.

Data flow::

    value --pickle protocol 5--> pickle bytes + [PickleBuffer, ...]   (no array data copied)
    each section --cut in CHUNK_SIZE chunks--> compressed file: worker threads shuffle,
                 compress, checksum; uncompressed: xxh3 of 1 MiB pieces as they are written
                 --in order (large: by offset, two threads)--> the output file, sections
                 64-byte aligned (uncompressed buffers of 32 MiB or more: 512 KiB,
                 :func:`.layout.buffer_alignment`)
    index (JSON) + trailer

With a compressor, the workers only run code that releases the GIL (zlib, bz2, lzma, lz4,
zstd), while the calling thread writes, so compression uses every core and the disk at once.
At most ``2 * workers`` chunks are in flight: memory stays flat for any size (a codec
stream, the usual case, is written by :mod:`.stream_output` the same way).

Without one, every piece is hashed (xxh3) right before it is written, while still in the
CPU cache, after reserving the file's blocks (:mod:`.preallocate`). A dump of at least
32 MiB to a regular file goes to :mod:`.positional`: the layout is known before any byte is
read, so the calling thread and one helper each take whole chunks, hash a 1 MiB piece and
``os.pwrite`` it at its offset; one thread hashes while the other copies into the page cache
(the kernel lets one write into a file at a time). Smaller dumps, and file objects that are
not regular files, are written in order by the calling thread (no thread started).

Measured, 1 GB of float64 to /tmp (ext4), quiet machine, interleaved rounds, medians
(2026-12-06, 18:45): with the 512 KiB rule, forklift 204 ms against 250 ms with every
section 64-byte aligned (25 rounds; 174 / 200 ms with 2.5 s idle before each dump, 15
rounds). With np.save and joblib in the same rounds (15): forklift 229 ms, np.save 405 ms
(193-1465), joblib 886 ms. np.save's single 1 GB write gets 2 MiB page-cache folios, which
on this VM come from memory its host has taken back and faults in again (see
:mod:`.layout`): 1.2-1.5 s when the dump follows 2.5 s without allocations. Earlier, before
the rule (shared machine): np.save 208-224 ms, sequential hash-then-write 248-322 ms (the
checksum, ~70 ms/GB, is the whole gap), two threads 224-260 ms (4 MiB pieces 224-232); on a
busy machine the two designs are within noise of each other, as the helper has no core of
its own. On /dev/shm (tmpfs, 4 KiB pages zeroed by the kernel, ~500 ms per GB): np.save 506
ms, sequential 573, two threads 561 (medians of 11). Also measured, not taken: the helper
hashing whole 64 MiB chunks ahead while the calling thread writes them in 64 MiB calls (no
lock hand-off, but every byte read twice from memory): 209-233 ms when quiet, worse medians
when busy; hashing pieces on a helper in step with the writes, 96 ms / 78 ms for 256 MB (a
hand-off per piece, against 66-94 / 63 sequential).

Imports only :mod:`forklift.errors` and :mod:`forklift._support`.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable, Iterator
from typing import IO, Any

from forklift._support.cpus import cpu_count
from forklift.persist import arrays, layout
from forklift.persist.bounded import OrderedJobs
from forklift.persist.compressors import CompressionChoice, Compressor, get_compressor
from forklift.persist.positional import PositionalOutput, open_positional
from forklift.persist.preallocate import preallocate
from forklift.persist.stream_output import StreamOutput
from forklift.persist.streams import STREAM_CODECS

__all__ = ["write_file"]

# stored bytes, 1 if compressed else 0, raw length, checksum of the stored bytes
Chunk = tuple[memoryview | bytes, int, int, int]


class _ArrayPickler(pickle.Pickler):
    """A pickler that sends numpy arrays through :func:`arrays.reduce_array`."""

    def __init__(self, file: IO[bytes], protocol: int, buffer_callback: Any) -> None:
        super().__init__(file, protocol=protocol, buffer_callback=buffer_callback)
        self._protocol = protocol
        self.array_meta: dict[int, dict[str, Any]] = {}

    def reducer_override(self, obj: Any) -> Any:
        numpy = arrays.numpy_if_loaded()
        if numpy is not None and isinstance(obj, numpy.ndarray):
            # Every array with bytes gets its own aligned section, however small: that is
            # what lets load(mmap_mode=...) return all of them as np.memmap, as joblib does.
            if type(obj) is numpy.ndarray and obj.nbytes == 0:
                return arrays.reduce_small_array(obj, self._protocol)
            reduced = arrays.reduce_array(obj, self._protocol)
            if reduced is not NotImplemented:
                buffer = reduced[1][0]
                self.array_meta[id(buffer)] = {
                    "type": type(obj).__name__,
                    "dtype": obj.dtype.str if obj.dtype.fields is None else str(obj.dtype),
                    "shape": list(obj.shape),
                    "order": reduced[1][3],
                    "_shuffle": _shuffle_width(obj.dtype),
                    "_keep": buffer,  # keeps id() unique until pickling ends
                }
            return reduced
        return NotImplemented


def _pickle(value: Any, protocol: int) -> tuple[memoryview, list[pickle.PickleBuffer], list[Any]]:
    buffers: list[pickle.PickleBuffer] = []
    metas: list[Any] = []
    pickler: _ArrayPickler

    def keep_out_of_band(buffer: pickle.PickleBuffer) -> bool:
        meta = pickler.array_meta.get(id(buffer))
        size = buffer.raw().nbytes
        if size == 0 or (meta is None and size < layout.INBAND_LIMIT):
            return True  # empty, or a small non-array buffer: serialised in-band
        buffers.append(buffer)
        metas.append({k: v for k, v in meta.items() if k != "_keep"} if meta else None)
        return False

    stream = io.BytesIO()
    callback = keep_out_of_band if protocol >= 5 else None
    pickler = _ArrayPickler(stream, protocol, callback)
    pickler.dump(value)
    # getbuffer() shares BytesIO's memory: a big in-band stream is not copied once more
    return stream.getbuffer(), buffers, metas


class _Output:
    """Counts the bytes written, so offsets are relative to where the file object started."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.position = 0

    def write(self, data: memoryview | bytes) -> None:
        view = memoryview(data)
        size = view.nbytes
        written = self._file.write(view)
        # Raw (unbuffered) files may write less than asked; loop until all is out.
        while written is not None and written < view.nbytes:
            view = view[written:]
            written = self._file.write(view)
        self.position += size

    def align(self, alignment: int = layout.ALIGNMENT) -> None:
        gap = layout.padding(self.position, alignment)
        if gap:
            self.write(bytes(gap))


def _chunks(view: memoryview, size: int = layout.CHUNK_SIZE) -> Iterator[memoryview]:
    for start in range(0, len(view), size):
        yield view[start : start + size]


def _shuffle_width(dtype: Any) -> int:
    """Item size to byte-shuffle by before compressing, 0 when shuffling does not apply."""
    if dtype.kind in "iufcmM" and dtype.itemsize in (2, 4, 8, 16):
        return int(dtype.itemsize)
    return 0


def _make_transform(
    compressor: Compressor | None, level: int, checksum_name: str, width: int
) -> Callable[[memoryview], Chunk]:
    def transform(chunk: memoryview) -> Chunk:
        stored: memoryview | bytes = chunk
        coded = 0
        if compressor is not None:
            source = (
                arrays.shuffle_bytes(chunk, width) if width and len(chunk) % width == 0 else chunk
            )
            packed = compressor.compress(source, level)
            if len(packed) < len(chunk) * layout.KEEP_COMPRESSED_RATIO:
                stored, coded = packed, 1
        return stored, coded, len(chunk), layout.checksum(checksum_name, stored)

    return transform


class _SectionWriter:
    def __init__(
        self,
        out: _Output | PositionalOutput,
        choice: CompressionChoice,
        checksum_name: str,
        *,
        measure: bool,
    ) -> None:
        self._out = out
        compressor = get_compressor(choice.name) if choice.name is not None else None
        self._compressor = compressor
        self._level = choice.level
        self._checksum_name = checksum_name
        self._measure = measure
        self._raw = compressor is None
        parallel = compressor is not None and compressor.parallel
        workers = min(cpu_count(), layout.MAX_WORKERS) if parallel else 1
        self._entries: list[list[int]] = []
        self._jobs = OrderedJobs(workers, self._emit, name="forklift-dump")

    def finish(self) -> None:
        """Write what is still deferred (a positional output's raw chunks)."""
        if isinstance(self._out, PositionalOutput):
            self._out.flush(self._checksum_name)

    def close(self) -> None:
        self._jobs.close()

    def write(
        self, data: memoryview, shuffle_width: int = 0, alignment: int = layout.ALIGNMENT
    ) -> dict[str, Any]:
        self._out.align(alignment)
        width = shuffle_width if self._compressor is not None else 0
        transform = _make_transform(self._compressor, self._level, self._checksum_name, width)
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        entries: list[list[int]] = []
        self._entries = entries
        if self._raw:
            for chunk in _chunks(view, layout.RAW_CHUNK_SIZE):
                self._write_raw(chunk, entries)
        elif len(view) <= layout.CHUNK_SIZE:  # one chunk: no thread hand-off
            for chunk in _chunks(view):
                self._emit(transform(chunk))
        else:
            for chunk in _chunks(view):
                self._jobs.submit(transform, chunk)
            self._jobs.drain()
        entry: dict[str, Any] = {
            "length": len(view),
            "checksum": self._checksum_name,
            "chunks": entries,
        }
        if width:
            entry["shuffle"] = width
        return entry

    def _write_raw(self, chunk: memoryview, entries: list[list[int]]) -> None:
        """Checksum each piece right before writing it, while it is still in the cache."""
        offset = self._out.position
        if isinstance(self._out, PositionalOutput):  # hashed and written by finish()
            entries.append([offset, len(chunk), len(chunk), 0, 0])
            self._out.defer(chunk, entries[-1])
            return
        if self._measure:  # the layout pass: the widest checksum, nothing read
            self._out.write(chunk)
            entries.append(
                [offset, len(chunk), len(chunk), 0, layout.CHECKSUMS[self._checksum_name]]
            )
            return
        check = layout.hasher(self._checksum_name)
        for start in range(0, len(chunk), layout.PIECE_SIZE):
            piece = chunk[start : start + layout.PIECE_SIZE]
            check.update(piece)
            self._out.write(piece)
        entries.append([offset, len(chunk), len(chunk), 0, check.intdigest()])

    def _emit(self, chunk: Chunk) -> None:
        stored, coded, raw_length, check = chunk
        self._entries.append([self._out.position, len(stored), raw_length, coded, check])
        self._out.write(stored)


class _StreamedSections:
    """Sections written raw into a codec stream (:class:`StreamOutput` compresses them)."""

    def __init__(self, out: StreamOutput, checksum_name: str) -> None:
        self._out = out
        self._checksum_name = checksum_name

    def write(
        self, data: memoryview, shuffle_width: int = 0, alignment: int = layout.ALIGNMENT
    ) -> dict[str, Any]:
        self._out.align(alignment)
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        shuffle_width = shuffle_width if self._out.shuffles else 0
        entry: dict[str, Any] = {
            "length": len(view),
            "checksum": self._checksum_name,
            "chunks": self._out.write_section(view, shuffle_width, self._checksum_name),
        }
        if shuffle_width:
            entry["shuffle"] = shuffle_width
        return entry

    def finish(self) -> None:
        self._out.drain()


class _Discard:
    """A file that keeps nothing: the layout pass of a sized write."""

    def write(self, data: memoryview | bytes) -> int:
        return memoryview(data).nbytes


def write_file(
    file: IO[bytes], value: Any, choice: CompressionChoice, protocol: int, *, sized: bool = False
) -> None:
    """Write ``value`` to the binary ``file`` in forklift's format.

    With a built-in codec the file is that codec's standard stream of an uncompressed
    forklift file (:mod:`.streams`); a registered codec compresses chunks inside the file.
    ``sized``: record the total length in the header (uncompressed files; the content of a
    codec stream always records it: the reader never decompresses past it).

    The length depends on the index, which holds checksums not known before the data is
    read. A first pass lays the file out without reading any data: every checksum is the
    widest value its algorithm can take, so the index it measures is as long as the real
    one can be; the real pass pads its index with JSON whitespace to that length. One pass
    over the data, as for an unsized file (a first design measured the real checksums in a
    first pass: +40% on a zstd dump, as the shuffle ran twice too).
    """
    pickled, buffers, metas = _pickle(value, protocol)
    positional = None
    if choice.name is None:  # uncompressed: its length is known but for the index
        end = layout.HEADER_SIZE + len(pickled)  # where the last section ends
        for buffer in buffers:
            size = buffer.raw().nbytes
            end += layout.padding(end, layout.buffer_alignment(size, compressed=False)) + size
        preallocate(file, end + layout.ALIGNMENT)
        positional = open_positional(file, end - layout.HEADER_SIZE)
    length = 0
    if (sized and choice.name is None) or choice.name in STREAM_CODECS:
        length = _write(_Discard(), pickled, buffers, metas, choice, protocol, 0, measure=True)  # type: ignore[arg-type]
    _write(positional or file, pickled, buffers, metas, choice, protocol, length)


def _padded_index(encoded: bytes, index_offset: int, length: int) -> bytes:
    """``encoded`` padded with spaces so that the file ends at ``length`` (0: as it is)."""
    if not length:
        return encoded
    room = length - layout.TRAILER.size - index_offset
    if len(encoded) > room:  # the layout pass assumed the widest checksums: cannot happen
        raise AssertionError(f"index of {len(encoded)} bytes, {room} laid out")
    return encoded.ljust(room, b" ")


def _write(
    file: IO[bytes] | PositionalOutput,
    pickled: memoryview,
    buffers: list[pickle.PickleBuffer],
    metas: list[Any],
    choice: CompressionChoice,
    protocol: int,
    length: int,
    *,
    measure: bool = False,
) -> int:
    """Write the file; ``length``: its total, from the layout pass (``measure``), or 0."""
    streamed = choice.name in STREAM_CODECS
    checksum_name = layout.WRITE_CHECKSUM
    out: _Output | StreamOutput | PositionalOutput
    sections: _SectionWriter | _StreamedSections
    if isinstance(file, PositionalOutput):
        out = file
        sections = _SectionWriter(out, choice, checksum_name, measure=measure)
    elif streamed:
        assert choice.name is not None
        out = StreamOutput(file, choice.name, choice.level, layout_only=measure)
        sections = _StreamedSections(out, checksum_name)
    else:
        out = _Output(file)
        sections = _SectionWriter(out, choice, checksum_name, measure=measure)
    try:
        out.write(layout.header_bytes(length))
        pickle_entry = sections.write(pickled)
        pickle_entry["protocol"] = protocol
        buffer_entries = []
        for buffer, meta in zip(buffers, metas, strict=True):
            raw = buffer.raw()
            alignment = layout.buffer_alignment(raw.nbytes, compressed=choice.name is not None)
            entry = sections.write(raw, meta.get("_shuffle", 0) if meta else 0, alignment)
            entry["readonly"] = raw.readonly
            if meta is not None:
                entry["array"] = {k: v for k, v in meta.items() if k != "_shuffle"}
            buffer_entries.append(entry)
        sections.finish()
        index: dict[str, Any] = {
            "version": list(layout.FORMAT_VERSION),
            "codec": None if streamed else choice.name,
            "level": choice.level if choice.name is not None and not streamed else 0,
            "pickle": pickle_entry,
            "buffers": buffer_entries,
        }
        if streamed:
            index["stream"] = [choice.name, choice.level]  # what the content was wrapped in
        encoded = json.dumps(index, separators=(",", ":")).encode("utf-8")
        out.align()
        index_offset = out.position
        encoded = _padded_index(encoded, index_offset, length)
        out.write(encoded)
        out.write(
            layout.TRAILER.pack(
                index_offset, len(encoded), layout.checksum("crc32", encoded), layout.TRAILER_MAGIC
            )
        )
        if isinstance(out, StreamOutput | PositionalOutput):
            out.close()
        return out.position
    finally:  # stop the worker threads, also when the dump failed
        if isinstance(out, StreamOutput):
            out.abort()
        elif isinstance(sections, _SectionWriter):
            sections.close()
