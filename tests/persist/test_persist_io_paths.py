"""How dump and load move bytes: xxh3 checksums, one pass per codec stream, grouped reads of
small arrays, and the ordered job runner they share."""

from __future__ import annotations

import gc
import io
import json
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from forklift.errors import CorruptFileError
from forklift.persist import arrays, dump, layout, load, reader, stream_input, streams
from forklift.persist.bounded import OrderedJobs
from forklift.persist.preallocate import preallocate

np = pytest.importorskip("numpy")


def _index(path: Path) -> reader.FileIndex:
    with open(path, "rb") as handle:
        return reader.read_index(reader.Source(handle, str(path)))


def test_sections_use_xxh3_which_catches_two_swapped_words(tmp_path: Path) -> None:
    # sum64 (a word sum) cannot see two 8-byte words trade places; xxh3 does
    path = tmp_path / "swap.fl"
    dump({"a": np.arange(100_000, dtype="<f8")}, path)
    index = _index(path)
    (section,) = index.buffers
    assert section.checksum == "xxh3" and index.pickle.checksum == "xxh3"
    data = bytearray(path.read_bytes())
    offset = section.chunks[0][0] + 800
    first, second = bytes(data[offset : offset + 8]), bytes(data[offset + 8 : offset + 16])
    data[offset : offset + 16] = second + first
    path.write_bytes(data)
    assert load(path)["a"][100] == 101.0  # not verified by default: the swap shows
    with pytest.raises(CorruptFileError, match="checksum"):
        load(path, verify=True)


def test_a_codec_stream_dump_shuffles_each_chunk_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the writer's layout pass reads no data: the length it records comes from the widest
    # checksums, and the real index is padded to it (before: a first pass over all the data)
    calls = []
    real = arrays.shuffle_bytes

    def counting(chunk: memoryview, width: int) -> memoryview:
        calls.append(len(chunk))
        return real(chunk, width)

    monkeypatch.setattr(arrays, "shuffle_bytes", counting)
    value = np.round(np.sin(np.arange(1_500_000) / 50.0), 3)  # 12 MB: 3 chunks
    path = tmp_path / "one-pass.zst"
    dump(value, path)
    assert len(calls) == 3
    np.testing.assert_array_equal(load(path), value)


@pytest.mark.parametrize("compress", ["gzip", "zstd", "lzma", 0])
def test_the_recorded_length_holds_with_the_padded_index(tmp_path: Path, compress: Any) -> None:
    # a file object: the header records the length (uncompressed), as the content of every
    # codec stream does; the index is padded with JSON whitespace to the laid-out length
    value = {"x": np.arange(70_000, dtype="<i8"), "y": list(range(50)), "z": b"q" * 20_000}
    buffer = io.BytesIO()
    dump(value, buffer, compress=compress)
    data = buffer.getvalue()
    loaded = load(io.BytesIO(data))
    np.testing.assert_array_equal(loaded["x"], value["x"])
    assert loaded["y"] == value["y"] and loaded["z"] == value["z"]
    if compress == 0:
        assert layout.sized_length(data) == len(data)
        offset, length, _, _ = layout.TRAILER.unpack(data[-layout.TRAILER.size :])
        encoded = data[offset : offset + length]
        assert json.loads(encoded)["version"]  # trailing spaces, if any, are JSON whitespace


class _CountingFile(io.FileIO):
    reads = 0

    def readinto(self, buffer: Any) -> int:
        type(self).reads += 1
        return super().readinto(buffer)

    def read(self, size: int = -1) -> bytes:
        type(self).reads += 1
        return super().read(size)


@pytest.mark.parametrize("verify", [False, True])
def test_small_arrays_are_read_together(tmp_path: Path, verify: bool) -> None:
    rng = np.random.default_rng(0)
    value = {f"k{i}": rng.random(int(n)) for i, n in enumerate(rng.integers(10, 900, 2_000))}
    path = tmp_path / "many.fl"
    dump(value, path)
    _CountingFile.reads = 0
    with _CountingFile(path, "rb") as handle:
        loaded = load(handle, verify=verify)
    assert _CountingFile.reads < 100  # one read per section would be 2,000
    assert loaded.keys() == value.keys()
    for key, array in value.items():
        np.testing.assert_array_equal(loaded[key], array)
        assert loaded[key].flags.writeable


def test_a_damaged_small_array_read_with_its_neighbours_is_caught(tmp_path: Path) -> None:
    value = {f"k{i}": np.full(100, float(i)) for i in range(50)}
    path = tmp_path / "many.fl"
    dump(value, path)
    section = _index(path).buffers[20]
    data = bytearray(path.read_bytes())
    data[section.chunks[0][0] + 5] ^= 0x10
    path.write_bytes(data)
    assert load(path)["k20"][0] != 20.0
    with pytest.raises(CorruptFileError, match="checksum"):
        load(path, verify=True)


def test_ordered_jobs_consume_in_order_with_a_bound() -> None:
    consumed: list[int] = []
    running = 0
    most = 0
    lock = threading.Lock()

    def job(number: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.002 * (number % 3))  # later jobs may finish first
        with lock:
            running -= 1
        return number

    with OrderedJobs(2, consumed.append) as jobs:
        for number in range(30):
            jobs.submit(job, number)
        jobs.drain()
    assert consumed == list(range(30))
    assert most <= 2


def test_ordered_jobs_raise_a_jobs_error_and_stop() -> None:
    def job(number: int) -> int:
        if number == 3:
            raise ValueError("three")
        return number

    consumed: list[int] = []

    def run() -> None:
        with OrderedJobs(2, consumed.append) as jobs:
            for number in range(10):
                jobs.submit(job, number)
            jobs.drain()

    with pytest.raises(ValueError, match="three"):
        run()
    assert consumed == [0, 1, 2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fallocate is Linux's")
def test_preallocate_reserves_blocks_without_changing_the_size(tmp_path: Path) -> None:
    path = tmp_path / "reserved"
    with open(path, "wb") as handle:
        handle.write(b"head")
        preallocate(handle, 16 << 20)
        handle.write(b"tail")
    status = path.stat()
    assert status.st_size == 8  # nothing appended, no zeros at the end
    assert status.st_blocks * 512 >= 16 << 20


def test_preallocate_skips_what_it_cannot_reserve(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    preallocate(buffer, 16 << 20)  # no file descriptor: nothing to do, no error
    path = tmp_path / "small"
    with open(path, "wb") as handle:
        preallocate(handle, 4096)  # under MIN_LENGTH: not worth a syscall
    assert path.stat().st_blocks == 0 and buffer.getvalue() == b""


def test_lz4_frames_are_checked_by_forklift_not_by_lz4(tmp_path: Path) -> None:
    # lz4's own checksums cost 20x the decode of incompressible data: forklift records the
    # xxh3 of each frame in the skippable frame before it and checks that instead
    value = np.random.default_rng(0).random(1_200_000)
    path = tmp_path / "value.lz4"
    dump(value, path)
    data = path.read_bytes()
    with open(path, "rb") as handle:
        table = streams.member_table(handle, 0, len(data), "lz4")
    assert table is not None
    for offset, length, _, _, check in table:
        frame = data[offset : offset + length]
        assert frame[:4] == b"\x04\x22\x4d\x18" and frame[4] & 0x14 == 0  # no lz4 checksums
        assert check is not None
    np.testing.assert_array_equal(load(path), value)
    offset, length, _, _, _ = max(table, key=lambda entry: entry[1])
    damaged = bytearray(data)
    damaged[offset + length // 2] ^= 0x01
    path.write_bytes(damaged)
    with pytest.raises(CorruptFileError, match="checksum"):
        load(path)


def test_lz4_files_of_the_previous_layout_still_load(tmp_path: Path) -> None:
    # before: a 16-byte skippable payload (no xxh3) and lz4 frames with their own checksums
    import lz4.frame

    value = {"a": np.arange(900_000.0), "b": "text"}
    path = tmp_path / "new.lz4"
    dump(value, path)
    with open(path, "rb") as handle:
        content = bytes(stream_input.decompress(handle, "new", "lz4"))
    old = bytearray()
    for start in range(0, len(content), 4 << 20):
        piece = content[start : start + (4 << 20)]
        frame = lz4.frame.compress(piece, content_checksum=True, block_checksum=True)
        old += struct.pack("<II4sIII", 0x184D2A5F, 16, b"FKLM", len(frame), len(piece), 0)
        old += frame
    path.write_bytes(old)
    loaded = load(path)
    np.testing.assert_array_equal(loaded["a"], value["a"])
    assert loaded["b"] == "text"


class _SeesCollector:
    seen: list[bool] = []  # noqa: RUF012 - a record shared by the instances

    def __init__(self) -> None:
        self.state = 1  # a state to restore, so unpickling calls __setstate__

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).seen.append(gc.isenabled())


def test_the_collector_pauses_during_a_load_and_is_restored(tmp_path: Path) -> None:
    path = tmp_path / "objects.fl"
    dump([_SeesCollector(), {"a": np.arange(10)}], path)
    _SeesCollector.seen = []
    load(path)
    assert _SeesCollector.seen == [False] and gc.isenabled()
    gc.disable()  # a caller's choice is kept
    try:
        load(path)
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert _SeesCollector.seen == [False, False]
