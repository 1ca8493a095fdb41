"""Where sections start: large uncompressed buffers on a LARGE_ALIGNMENT boundary, everything
else 64-byte packed, the same layout whichever writer (path or file object, sequential or by
offset) lays the file out, and every such file loads, maps and verifies."""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import Any

import pytest

from forklift.persist import SAFE_GLOBALS, arrays, dump, layout, load, positional, reader

np = pytest.importorskip("numpy")

LARGE = layout.LARGE_SECTION


def _index(handle: Any, name: str = "file") -> reader.FileIndex:
    return reader.read_index(reader.Source(handle, name))


def _index_of(path: Path) -> reader.FileIndex:
    with open(path, "rb") as handle:
        return _index(handle, str(path))


def _offsets(index: reader.FileIndex) -> list[int]:
    return [section.chunks[0][0] for section in index.buffers]


def _value() -> dict[str, Any]:
    rng = np.random.default_rng(3)
    # small arrays of sizes that are not multiples of 64 before and after the large ones
    return {
        "small": rng.random(1001),
        "big": rng.random(LARGE // 8 + 5),
        "just_below": rng.integers(0, 255, size=LARGE - 1, dtype="u1"),
        "after": rng.random(3),
        "exactly": rng.integers(0, 255, size=LARGE, dtype="u1"),
    }


def _check_loaded(loaded: dict[str, Any], value: dict[str, Any]) -> None:
    assert set(loaded) == set(value)
    for key, array in value.items():
        np.testing.assert_array_equal(loaded[key], array)


def test_large_raw_buffers_start_on_the_large_boundary(tmp_path: Path) -> None:
    value = _value()
    path = tmp_path / "value.fkl"
    dump(value, path)
    index = _index_of(path)
    offsets = _offsets(index)
    lengths = [section.length for section in index.buffers]
    assert lengths == [8008, LARGE + 40, LARGE - 1, 24, LARGE]
    # "big" and "exactly" (at least LARGE_SECTION bytes) on the large boundary, and a
    # multiple of 64 like every section
    assert offsets[1] % layout.LARGE_ALIGNMENT == 0 and offsets[1] > 0
    assert offsets[4] % layout.LARGE_ALIGNMENT == 0
    # the others right after their predecessor, padded to 64 bytes only
    pickle_end = index.pickle.chunks[-1][0] + index.pickle.chunks[-1][1]
    assert offsets[0] == pickle_end + layout.padding(pickle_end)
    for previous in (1, 2):
        end = offsets[previous] + lengths[previous]
        assert offsets[previous + 1] == end + layout.padding(end)


def test_small_arrays_stay_packed_on_64_bytes(tmp_path: Path) -> None:
    # a dict of many small arrays must not grow: each section follows the previous one
    value = {f"a{i}": np.full(i % 7 + 1, i, dtype="<i4") for i in range(300)}
    path = tmp_path / "small.fkl"
    dump(value, path)
    index = _index_of(path)
    end = index.pickle.chunks[-1][0] + index.pickle.chunks[-1][1]
    for section in index.buffers:
        assert section.chunks[0][0] == end + layout.padding(end)
        end = section.chunks[0][0] + section.length
    _check_loaded(load(path), value)


def test_aligned_files_load_map_and_verify(tmp_path: Path) -> None:
    value = _value()
    path = tmp_path / "value.fkl"
    dump(value, path)
    offsets = _offsets(_index_of(path))
    _check_loaded(load(path), value)
    _check_loaded(load(path, verify=True), value)
    _check_loaded(load(path, allowed_globals=SAFE_GLOBALS), value)
    mapped = load(path, mmap_mode="r")
    _check_loaded(mapped, value)
    assert [mapped[key].offset for key in value] == offsets
    assert isinstance(mapped["big"], np.memmap)
    del mapped


def test_path_and_file_object_dumps_lay_the_file_out_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # by offset (a path, a regular file object) or in order (BytesIO, a path below the
    # positional threshold): the same sections at the same offsets, the same bytes; file
    # objects only add their length to the header (and pad the index to it)
    value = _value()
    path = tmp_path / "path.fkl"
    dump(value, path)
    files = {"path": path.read_bytes()}
    with open(tmp_path / "object.fkl", "wb") as handle:
        dump(value, handle)
    files["regular file object"] = (tmp_path / "object.fkl").read_bytes()
    memory = io.BytesIO()
    dump(value, memory)
    files["BytesIO"] = memory.getvalue()
    with monkeypatch.context() as patch:
        patch.setattr(positional, "MIN_LENGTH", 1 << 62)
        dump(value, tmp_path / "sequential.fkl")
    files["sequential path"] = (tmp_path / "sequential.fkl").read_bytes()
    assert files["sequential path"] == files["path"]
    indexes = {name: _index(io.BytesIO(data)) for name, data in files.items()}
    tables = {name: [s.chunks for s in index.buffers] for name, index in indexes.items()}
    assert all(table == tables["path"] for table in tables.values())
    index_offset = layout.TRAILER.unpack(files["path"][-layout.TRAILER.size :])[0]
    for data in files.values():
        body = data[layout.HEADER_SIZE : index_offset]
        assert body == files["path"][layout.HEADER_SIZE : index_offset]
        _check_loaded(load(io.BytesIO(data), verify=True), value)


def test_a_dump_after_other_bytes_aligns_from_its_own_start(tmp_path: Path) -> None:
    # offsets count from where the dump started: the file holds the same dump wherever it
    # is placed, and loads from a file object standing there
    value = _value()
    memory = io.BytesIO()
    dump(value, memory)
    expected = memory.getvalue()
    path = tmp_path / "appended"
    with open(path, "wb") as handle:
        handle.write(b"h" * 1001)
        dump(value, handle)
        handle.write(b"tail")
    data = path.read_bytes()
    assert data[1001 : 1001 + len(expected)] == expected
    assert _offsets(_index(io.BytesIO(expected)))[1] % layout.LARGE_ALIGNMENT == 0
    with open(path, "rb") as handle:
        handle.seek(1001)
        _check_loaded(load(handle, verify=True), value)
        assert handle.read() == b"tail"


def test_codec_streams_keep_64_byte_packing() -> None:
    # the content of a codec stream is never mapped nor written by offset: no large gaps
    value = {"zeros": np.zeros(LARGE // 8)}
    memory = io.BytesIO()
    dump(value, memory, compress=("zlib", 1))
    content = zlib.decompress(memory.getvalue())
    index = _index(io.BytesIO(content))
    end = index.pickle.chunks[-1][0] + index.pickle.chunks[-1][1]
    assert _offsets(index) == [end + layout.padding(end)]
    np.testing.assert_array_equal(load(io.BytesIO(memory.getvalue()))["zeros"], value["zeros"])


def test_the_rule() -> None:
    assert layout.LARGE_ALIGNMENT % layout.ALIGNMENT == 0
    assert layout.buffer_alignment(LARGE, compressed=False) == layout.LARGE_ALIGNMENT
    assert layout.buffer_alignment(LARGE - 1, compressed=False) == layout.ALIGNMENT
    assert layout.buffer_alignment(LARGE, compressed=True) == layout.ALIGNMENT
    assert layout.padding(65, layout.LARGE_ALIGNMENT) == layout.LARGE_ALIGNMENT - 65


def test_a_loaded_large_array_sits_like_its_bytes_in_the_file(tmp_path: Path) -> None:
    # the copy out of the page cache is 3x slower when the destination is 16 bytes past the
    # source within a page (numpy's large blocks start there): blocks match the file's
    # page offset, for a path and for a file object standing after other bytes
    value = _value()
    path = tmp_path / "value.fkl"
    dump(value, path)
    offsets = _offsets(_index_of(path))
    for verify in (False, True):
        loaded = load(path, verify=verify)
        for key, offset in zip(value, offsets, strict=True):
            if value[key].nbytes >= 1 << 20:
                assert loaded[key].ctypes.data % 4096 == offset % 4096
    (tmp_path / "after").write_bytes(b"h" * 1000 + path.read_bytes())
    with open(tmp_path / "after", "rb") as handle:
        handle.seek(1000)
        loaded = load(handle)
    assert loaded["big"].ctypes.data % 4096 == (1000 + offsets[1]) % 4096
    _check_loaded(loaded, value)


@pytest.mark.parametrize("offset", [0, 64, 4032, (3 << 20) + 192])
def test_empty_block_matches_the_page_offset(offset: int) -> None:
    block = arrays.empty_block(1 << 20, offset)
    assert len(block) == 1 << 20 and block.flags.writeable
    assert block.ctypes.data % arrays.PAGE == offset % arrays.PAGE
