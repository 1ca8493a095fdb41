"""dump/load files behave like joblib's: real codec streams, file objects, memmaps, errors."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import shutil
import socket
import subprocess
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forklift import hash
from forklift.errors import ConfigurationError, CorruptFileError, UnknownHashError
from forklift.persist import dump, load, streams
from forklift.persist.layout import MAGIC

np = pytest.importorskip("numpy")

DATA = Path(__file__).parent / "data"

# extension -> (command-line tool and its options, Python's own decompressor or None)
CODEC_FILES: dict[str, tuple[list[str] | None, Callable[[bytes], bytes] | None]] = {
    ".gz": (["gzip"], gzip.decompress),
    ".z": (None, zlib.decompress),
    ".bz2": (["bzip2"], bz2.decompress),
    ".xz": (["xz"], lzma.decompress),
    ".lzma": (["xz", "--format=lzma"], lzma.decompress),
    ".lz4": (["lz4"], None),
    ".zst": (["zstd"], None),
}


def _value() -> dict[str, Any]:
    rng = np.random.default_rng(3)
    return {
        # 9.6 MB: several 4 MiB chunks, so several members compressed on several threads
        "smooth": np.round(np.sin(np.arange(1_200_000) / 500.0), 3),
        "noise": rng.integers(0, 256, size=1 << 20, dtype=np.uint8),
        "small": np.arange(5),
        "text": "forklift " * 200,
    }


def _same(loaded: dict[str, Any], value: dict[str, Any]) -> None:
    assert loaded.keys() == value.keys()
    for key, item in value.items():
        if isinstance(item, np.ndarray):
            assert loaded[key].dtype == item.dtype
            assert np.array_equal(loaded[key], item), key
        else:
            assert loaded[key] == item


@pytest.mark.parametrize("extension", sorted(CODEC_FILES))
def test_named_file_is_a_stream_that_standard_tools_read(tmp_path: Path, extension: str) -> None:
    tool, python_decompress = CODEC_FILES[extension]
    value = _value()
    path = tmp_path / f"value.pkl{extension}"
    dump(value, path)
    contents = []
    if python_decompress is not None:
        contents.append(python_decompress(path.read_bytes()))
    if tool is not None and shutil.which(tool[0]):
        subprocess.run([*tool, "-t", str(path)], check=True, capture_output=True)
        done = subprocess.run([*tool, "-dc", str(path)], check=True, capture_output=True)
        contents.append(done.stdout)
    if not contents:
        pytest.skip(f"neither Python nor a {extension} tool can decompress here")
    for content in contents:
        # what the codec holds is a plain (uncompressed) forklift file: it loads as such
        assert content.startswith(MAGIC)
        _same(load(io.BytesIO(content)), value)
    _same(load(path), value)


def _zlib_with_shared_history(content: bytes) -> bytes:
    # sync flushes (the writer's piece markers) between pieces that refer back across them
    packer = zlib.compressobj(6)
    parts = [
        packer.compress(content[start : start + (1 << 20)]) + packer.flush(zlib.Z_SYNC_FLUSH)
        for start in range(0, len(content), 1 << 20)
    ]
    return b"".join(parts) + packer.flush()


@pytest.mark.parametrize(
    ("extension", "compress"),
    [
        (".gz", gzip.compress),
        (".z", _zlib_with_shared_history),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
        (".lzma", lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE)),
    ],
)
def test_forklift_file_recompressed_by_another_tool_loads(
    tmp_path: Path, extension: str, compress: Callable[[bytes], bytes]
) -> None:
    value = _value()
    plain = tmp_path / "plain.pkl"
    dump(value, plain)
    path = tmp_path / f"value{extension}"
    path.write_bytes(compress(plain.read_bytes()))
    _same(load(path), value)
    with open(path, "rb") as handle:
        _same(load(handle), value)


def test_integer_compress_writes_one_zlib_stream_like_joblib(tmp_path: Path) -> None:
    value = _value()
    path = tmp_path / "value.pkl"
    dump(value, path, compress=3)
    decompressor = zlib.decompressobj()
    content = decompressor.decompress(path.read_bytes())
    assert decompressor.eof and not decompressor.unused_data  # one stream, nothing after
    _same(load(io.BytesIO(content)), value)


@pytest.mark.parametrize("codec", ["gzip", "bz2", "xz", "lz4", "zstd"])
def test_large_dump_is_compressed_in_independent_members(tmp_path: Path, codec: str) -> None:
    """The chunks are still compressed separately (on all cores), as members of one stream."""
    path = tmp_path / "value.bin"
    dump(_value(), path, compress=(codec, 1))
    data = path.read_bytes()
    if codec in ("gzip", "lz4", "zstd"):
        with open(path, "rb") as handle:
            table = streams.member_table(handle, 0, len(data), codec)
        assert table is not None and len(table) >= 3
    elif codec == "xz":
        assert data.count(b"\xfd7zXZ\x00") >= 3
    else:
        assert data.count(b"1AY&SY") >= 3  # bzip2 block magic: one stream per chunk at least


def test_damaged_stream_is_reported_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "value.gz"
    dump(_value(), path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptFileError, match=r"value\.gz"):
        load(path)


@pytest.mark.parametrize("codec", ["raw", "zlib", "gzip", "bz2", "lzma", "xz", "lz4", "zstd"])
def test_files_written_before_codec_streams_still_load(codec: str) -> None:
    # Written by forklift before this change (compressed chunks inside forklift's container).
    loaded = load(DATA / f"pre-stream-{codec}.fkl", ensure_native_byte_order=False)
    assert np.array_equal(loaded["smooth"], np.arange(6000.0))
    assert np.array_equal(loaded["small"], np.arange(5))
    assert loaded["be"].dtype == np.dtype(">i8")
    assert np.array_equal(loaded["be"], np.arange(3000))
    assert loaded["text"] == "forklift" * 10


@pytest.mark.parametrize("compress", [0, 3, "zstd", "bz2"])
def test_load_reads_a_file_object_from_its_start_right_after_dump(compress: Any) -> None:
    value = _value()
    buffer = io.BytesIO()
    dump(value, buffer, compress=compress)
    _same(load(buffer), value)  # no seek(0) needed, as with joblib


@pytest.mark.parametrize("opener", [gzip.GzipFile, bz2.BZ2File, lzma.LZMAFile])
def test_file_written_through_a_codec_file_object_loads_from_a_plain_handle(
    tmp_path: Path, opener: Any
) -> None:
    value = _value()
    path = tmp_path / "value.bin"
    with opener(path, "wb") as handle:
        dump(value, handle)
    with open(path, "rb") as plain:
        _same(load(plain), value)
    _same(load(path), value)


def test_file_object_name_never_picks_a_codec(tmp_path: Path) -> None:
    path = tmp_path / "value.gz"
    with gzip.GzipFile(path, "wb") as handle:  # its name ends in .gz, and it compresses
        dump([1, 2, 3], handle)
    assert gzip.decompress(path.read_bytes()).startswith(MAGIC)  # not gzip inside gzip


@pytest.mark.parametrize("compress", [0, "gzip"])
def test_dump_and_load_through_socket_files(compress: Any) -> None:
    value = _value()
    sender, receiver = socket.socketpair()
    errors: list[BaseException] = []

    def send() -> None:
        try:
            with sender, sender.makefile("wb") as stream:
                dump(value, stream, compress=compress)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    thread = threading.Thread(target=send)
    thread.start()
    try:
        with receiver, receiver.makefile("rb") as stream:
            loaded = load(stream)
    finally:
        thread.join(60)
    assert not errors
    _same(loaded, value)


def test_objects_follow_each_other_on_an_open_socket_as_with_joblib() -> None:
    """load() returns each object as soon as it arrived; the sender keeps its socket open."""
    first, second = _value(), {"next": np.arange(7), "text": "second"}
    sender, receiver = socket.socketpair()
    done = threading.Event()
    errors: list[BaseException] = []

    def send() -> None:
        try:
            with sender.makefile("wb") as stream:
                dump(first, stream)
                dump(second, stream)
                stream.flush()
                done.wait(60)  # still open while the receiver loads both
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    thread = threading.Thread(target=send)
    thread.start()
    try:
        with receiver.makefile("rb") as stream:
            _same(load(stream), first)
            _same(load(stream), second)
    finally:
        done.set()
        thread.join(60)
        sender.close()
        receiver.close()
    assert not errors


def test_objects_follow_each_other_in_one_file_object() -> None:
    buffer = io.BytesIO()
    dump([1], buffer)
    dump({"a": np.arange(3.0)}, buffer)
    buffer.seek(0)
    assert load(buffer) == [1]
    assert np.array_equal(load(buffer)["a"], np.arange(3.0))


def test_load_converts_byte_order_like_joblib(tmp_path: Path) -> None:
    value = {"big": np.arange(20_000, dtype=">f8"), "small": np.arange(3, dtype=">i4")}
    path = tmp_path / "be.pkl"
    dump(value, path)
    native = load(path)  # "auto" without mmap_mode: converted
    assert all(native[key].dtype.isnative for key in value)
    assert all(np.array_equal(native[key], value[key]) for key in value)
    kept = load(path, ensure_native_byte_order=False)
    assert kept["big"].dtype == np.dtype(">f8") and kept["small"].dtype == np.dtype(">i4")
    assert load(path, mmap_mode="r")["big"].dtype == np.dtype(">f8")  # "auto" keeps maps
    assert load(path, None, True)["big"].dtype.isnative  # joblib's positional order
    dump(value, tmp_path / "be.gz")
    assert load(tmp_path / "be.gz")["big"].dtype.isnative


def test_native_byte_order_with_mmap_is_refused_in_joblibs_words(tmp_path: Path) -> None:
    dump(np.arange(3.0), tmp_path / "a.pkl")
    with pytest.raises(ConfigurationError, match="Native byte ordering can only be enforced"):
        load(tmp_path / "a.pkl", mmap_mode="r", ensure_native_byte_order=True)
    with pytest.raises(ConfigurationError, match="ensure_native_byte_order='yes'"):
        load(tmp_path / "a.pkl", ensure_native_byte_order="yes")


def test_joblib_files_get_native_byte_order_too(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "joblib.pkl"
    joblib.dump({"be": np.arange(1000, dtype=">f8")}, path)
    assert load(path)["be"].dtype.isnative
    assert load(path, ensure_native_byte_order=False)["be"].dtype == np.dtype(">f8")


def test_mmap_loads_every_array_as_a_memmap_with_its_offset_and_filename(
    tmp_path: Path,
) -> None:
    value = {
        "first": np.ones(70 << 17),  # 70 MiB: what follows is stored past 64 MiB
        "small": np.arange(5, dtype=np.int16),
        "fortran": np.asfortranarray(np.arange(600.0).reshape(20, 30)),
        "big_endian": np.arange(1000, dtype=">i4"),
    }
    path = tmp_path / "arrays.pkl"
    dump(value, path)
    loaded = load(path, mmap_mode="r")
    with open(path, "rb") as handle:
        for key, array in value.items():
            mapped = loaded[key]
            assert isinstance(mapped, np.memmap), key
            assert mapped.filename == os.path.abspath(path)
            assert mapped.dtype == array.dtype
            handle.seek(mapped.offset)
            assert handle.read(array.nbytes) == array.tobytes(order="A"), key
            again = np.memmap(
                mapped.filename,
                dtype=mapped.dtype,
                mode="r",
                offset=mapped.offset,
                shape=mapped.shape,
                order="F" if key == "fortran" else "C",
            )
            assert np.array_equal(again, array)
            del again, mapped
    assert loaded["big_endian"].offset > 64 << 20
    del loaded


@pytest.mark.parametrize(
    "unpicklable",
    [
        pytest.param(lambda: (n for n in range(3)), id="generator"),
        pytest.param(lambda: {"lock": threading.Lock()}, id="lock-in-dict"),
        pytest.param(lambda: [1, threading.Event()], id="event-in-list"),
    ],
)
def test_hash_of_unpicklable_object_raises_pickling_error(unpicklable: Any) -> None:
    with pytest.raises(pickle.PicklingError):
        hash(unpicklable())


@pytest.mark.parametrize(
    ("compress", "phrase"),
    [
        (("zlib", 3, 4), "Compress argument tuple should contain exactly 2 elements"),
        (("zlib",), "Compress argument tuple should contain exactly 2 elements"),
        (("snappy", 3), 'Non valid compression method given: "snappy"'),
        ("snappy", 'Non valid compression method given: "snappy"'),
        ((None, 3), 'Non valid compression method given: "None"'),
        (10, 'Non valid compress level given: "10"'),
        (-1, 'Non valid compress level given: "-1"'),
        (3.5, 'Non valid compress level given: "3.5"'),
        (("zlib", 10), 'Non valid compress level given: "10"'),
        (("zlib", "3"), 'Non valid compress level given: "3"'),
        ({"a": 1}, "Non valid compress level given"),
    ],
)
def test_compress_errors_use_joblibs_wording(tmp_path: Path, compress: Any, phrase: str) -> None:
    with pytest.raises(ValueError, match=phrase):
        dump(1, tmp_path / "a.pkl", compress=compress)
    assert not os.listdir(tmp_path)


def test_compress_none_and_level_zero_mean_no_compression(tmp_path: Path) -> None:
    dump([1], tmp_path / "a.pkl", compress=None)
    dump([1], tmp_path / "b.gz", compress=("gzip", 0))  # joblib: an explicit 0 wins
    for name in ("a.pkl", "b.gz"):
        assert (tmp_path / name).read_bytes().startswith(MAGIC)


def test_unknown_hash_name_uses_joblibs_wording() -> None:
    with pytest.raises(UnknownHashError, match="Valid options for 'hash_name' are"):
        hash(1, hash_name="crc32")


def test_dump_into_a_missing_folder_names_the_users_file(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "model.pkl"
    with pytest.raises(FileNotFoundError) as info:
        dump([1], target)
    assert info.value.filename == str(target)
    assert ".tmp" not in str(info.value) and str(target) in str(info.value)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError) as not_folder:
        dump([1], tmp_path / "file" / "model.pkl")
    assert not_folder.value.filename == str(tmp_path / "file" / "model.pkl")


@pytest.mark.parametrize("size", [10, 1_000_000])  # pickled, and shared as a memmap
def test_non_native_byte_order_survives_parallel(size: int) -> None:
    from forklift import Parallel, delayed

    array = np.arange(size, dtype=">f8")
    results = Parallel(n_jobs=2, backend="loky")(delayed(_same_array)(array) for _ in range(2))
    for result in results:
        assert result.dtype == np.dtype(">f8")
        assert np.array_equal(result, array)


def _same_array(array: Any) -> Any:
    return array


def test_member_claiming_fewer_bytes_than_it_holds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "value.gz"
    dump(_value(), path)
    data = bytearray(path.read_bytes())
    with open(path, "rb") as handle:
        table = streams.member_table(handle, 0, len(data), "gzip")
    assert table is not None
    offset, _, raw, _, _ = table[1]
    # the FK subfield's raw size: bytes 20-23 of the member header
    data[offset + 20 : offset + 24] = (raw // 2).to_bytes(4, "little")
    path.write_bytes(data)
    with pytest.raises(CorruptFileError, match="value"):
        load(path)


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_shuffled_members_load_the_same_with_and_without_verify(tmp_path: Path, codec: str) -> None:
    # without verify, members recorded as shuffled are unshuffled while decompressed;
    # with it, after forklift's checksums of the stored (shuffled) bytes are checked
    value = _value()
    path = tmp_path / "value.bin"
    dump(value, path, compress=(codec, 1))
    with open(path, "rb") as handle:
        table = streams.member_table(handle, 0, path.stat().st_size, codec)
    assert table is not None and any(entry[3] == 8 for entry in table)
    _same(load(path), value)
    _same(load(path, verify=True), value)


@pytest.mark.parametrize("level", [1, 9])
def test_lz4_members_are_stored_unshuffled(tmp_path: Path, level: int) -> None:
    # lz4 is chosen for speed: shuffled chunks decode 3x slower for a 10% smaller file
    value = _value()
    path = tmp_path / "value.lz4"
    dump(value, path, compress=("lz4", level))
    with open(path, "rb") as handle:
        table = streams.member_table(handle, 0, path.stat().st_size, "lz4")
    assert table is not None and all(entry[3] == 0 for entry in table)
    _same(load(path), value)
    _same(load(path, verify=True), value)


@pytest.mark.parametrize(("recorded", "width", "phrase"), [(8, 4, "differs"), (0, 8, "recorded")])
def test_member_shuffle_width_must_match_the_index(
    tmp_path: Path, recorded: int, width: int, phrase: str
) -> None:
    path = tmp_path / "value.gz"
    dump(_value(), path)
    data = bytearray(path.read_bytes())
    with open(path, "rb") as handle:
        table = streams.member_table(handle, 0, len(data), "gzip")
    assert table is not None
    # a chunk of "smooth" (float64, shuffled by 8), or "noise" (uint8, 1 MiB, not shuffled)
    offset = next(entry[0] for entry in table if entry[3] == recorded and entry[2] >= 1 << 20)
    data[offset + 24 : offset + 28] = width.to_bytes(4, "little")  # the FK shuffle width
    path.write_bytes(data)
    with pytest.raises(CorruptFileError, match=phrase):
        load(path)


def test_a_sized_file_cut_short_or_extended_is_damaged(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    dump({"a": np.arange(1000.0)}, buffer)  # a file object: the header records the length
    data = buffer.getvalue()
    assert MAGIC in data[:8]
    with pytest.raises(CorruptFileError, match="truncated"):
        load(io.BytesIO(data[:-10]))
    path = tmp_path / "longer.pkl"
    path.write_bytes(data + b"more")
    with pytest.raises(CorruptFileError, match="header records"):
        load(path)
