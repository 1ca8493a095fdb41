"""Compressors: every codec round trips, names/levels/extensions resolve as joblib's do."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from forklift.errors import (
    ConfigurationError,
    PersistWarning,
    UnknownCompressorError,
)
from forklift.persist import compressor_names, dump, inspect_file, load, register_compressor
from forklift.persist.compressors import CompressionChoice, resolve_compression

np = pytest.importorskip("numpy")

CODECS = ["zlib", "gzip", "bz2", "lzma", "xz", "lz4", "zstd"]


def _value() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    return {
        # more than one 4 MiB chunk: compressible, and random (stored raw)
        "smooth": np.arange(600_000.0),
        "noise": rng.integers(0, 256, size=5 << 20, dtype=np.uint8),
        "small": np.arange(10),
        "text": "x" * 100_000,
    }


@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_round_trips(tmp_path: Path, codec: str) -> None:
    value = _value()
    path = tmp_path / "v.fl"
    dump(value, path, compress=(codec, 1))
    loaded = load(path)
    for key in ("smooth", "noise", "small"):
        assert np.array_equal(loaded[key], value[key])
    assert loaded["text"] == value["text"]
    assert inspect_file(path).compression == f"{codec} level 1"


def test_compression_shrinks_and_incompressible_chunks_are_stored_raw(tmp_path: Path) -> None:
    import zlib

    from forklift.persist import reader

    class Deflate:  # a registered codec: compressed chunks inside forklift's own container
        extensions = (".deflate-test",)
        parallel = True

        def compress(self, data: memoryview, level: int) -> bytes:
            return zlib.compress(data, level)

        def decompress(self, data: bytes, raw_length: int) -> bytes:
            return zlib.decompress(data)

    register_compressor("deflate-test", Deflate(), force=True)
    value = _value()
    dump(value, tmp_path / "raw.fl")
    dump(value, tmp_path / "z.fl", compress=3)
    dump(value, tmp_path / "c.fl", compress=("deflate-test", 3))
    raw_size = (tmp_path / "raw.fl").stat().st_size
    assert (tmp_path / "z.fl").stat().st_size < raw_size
    with open(tmp_path / "c.fl", "rb") as handle:
        index = reader.read_index(reader.Source(handle, "c"))
    smooth, noise, _ = index.buffers  # every array is out of band (the third: "small")
    assert all(chunk[3] == 1 for chunk in smooth.chunks)
    assert all(chunk[3] == 0 for chunk in noise.chunks)  # random bytes: kept raw
    assert len(noise.chunks) == 2


@pytest.mark.parametrize(
    ("compress", "filename", "expected"),
    [
        (0, "a.pkl", CompressionChoice(None, 0)),
        (False, "a.pkl", CompressionChoice(None, 0)),
        (True, "a.pkl", CompressionChoice("zlib", 3)),
        (6, "a.pkl", CompressionChoice("zlib", 6)),
        ("lz4", "a.pkl", CompressionChoice("lz4", 1)),  # lz4 is chosen for speed: fast mode
        (("bz2", 9), "a.pkl", CompressionChoice("bz2", 9)),
        (["xz", 2], "a.pkl", CompressionChoice("xz", 2)),
        (0, "a.pkl.gz", CompressionChoice("gzip", 3)),
        (0, "a.pkl.z", CompressionChoice("zlib", 3)),
        (0, "a.bz2", CompressionChoice("bz2", 3)),
        (0, "a.xz", CompressionChoice("xz", 3)),
        (0, "a.lzma", CompressionChoice("lzma", 3)),
        (0, "a.lz4", CompressionChoice("lz4", 1)),
        (0, "a.zst", CompressionChoice("zstd", 2)),
        ("zstd", "a.pkl", CompressionChoice("zstd", 2)),
        (("zstd", 3), "a.pkl", CompressionChoice("zstd", 3)),
        (5, "a.gz", CompressionChoice("gzip", 5)),
        ("zlib", "a.gz", CompressionChoice("zlib", 3)),
    ],
)
def test_resolve_compression(compress: Any, filename: str, expected: CompressionChoice) -> None:
    assert resolve_compression(compress, filename) == expected


@pytest.mark.parametrize("bad", [10, -1, 2.5, ("zlib",), ("zlib", "3"), object()])
def test_bad_compress_values_are_configuration_errors(bad: Any) -> None:
    with pytest.raises(ConfigurationError):
        resolve_compression(bad, "a.pkl")


def test_unknown_compressor_lists_known_ones() -> None:
    with pytest.raises(UnknownCompressorError, match="zstd") as info:
        resolve_compression("snappy", "a.pkl")
    assert isinstance(info.value, ValueError)


def test_extension_picks_compressor(tmp_path: Path) -> None:
    path = tmp_path / "value.pkl.zst"
    dump(np.arange(100_000.0), path)
    assert inspect_file(path).compression == "zstd level 2"


class _Halve:
    extensions = (".half",)
    parallel = True

    def compress(self, data: memoryview, level: int) -> bytes:
        raw = bytes(data)
        if len(raw) % 2 or raw != raw[: len(raw) // 2] * 2:
            return raw + b"!"  # larger than the input: the writer stores the chunk raw
        return raw[: len(raw) // 2]

    def decompress(self, data: bytes, raw_length: int) -> bytes:
        return data * 2


def test_register_compressor(tmp_path: Path) -> None:
    register_compressor("halve-test", _Halve())
    assert "halve-test" in compressor_names()
    with pytest.raises(ConfigurationError, match="already registered"):
        register_compressor("halve-test", _Halve())
    register_compressor("halve-test", _Halve(), force=True)
    with pytest.raises(ConfigurationError, match="not a Compressor"):
        register_compressor("nothing", object())  # type: ignore[arg-type]
    value = np.zeros(1 << 20)
    dump(value, tmp_path / "x.half")
    assert inspect_file(tmp_path / "x.half").compression == "halve-test level 3"
    assert np.array_equal(load(tmp_path / "x.half"), value)


def test_mmap_mode_on_compressed_file_warns_and_reads(tmp_path: Path) -> None:
    path = tmp_path / "c.fl"
    dump(np.arange(100_000.0), path, compress=1)
    with pytest.warns(PersistWarning, match="ignored for a compressed file") as caught:
        loaded = load(path, mmap_mode="r")
    assert [w.filename for w in caught] == [__file__]  # points at the caller of load()
    assert type(loaded) is np.ndarray
    assert loaded.flags.writeable


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import builtins

    from forklift.errors import CompressorUnavailableError

    real_import = builtins.__import__

    def no_zstandard(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "zstandard":
            raise ImportError("No module named 'zstandard'")
        return real_import(name, *args, **kwargs)

    from forklift.persist import compressors

    monkeypatch.setattr(compressors, "__import__", no_zstandard, raising=False)
    monkeypatch.setattr(builtins, "__import__", no_zstandard)
    fresh = compressors._Zstd()
    with pytest.raises(CompressorUnavailableError, match=r"forklift\[zstd\]") as info:
        fresh.compress(memoryview(b"abc"), 3)
    assert isinstance(info.value, ImportError)


def test_file_objects(tmp_path: Path) -> None:
    value = {"a": np.arange(300_000.0), "b": [1, 2, 3]}
    for compress in (0, 3, "zstd"):
        buffer = io.BytesIO()
        buffer.write(b"prefix")  # a file object need not start at 0
        assert dump(value, buffer, compress=compress) == []
        buffer.seek(6)
        loaded = load(buffer)
        assert np.array_equal(loaded["a"], value["a"])
        assert loaded["b"] == value["b"]
    with open(tmp_path / "f.fl", "wb") as handle:
        dump(value, handle)
    with open(tmp_path / "f.fl", "rb") as handle, pytest.warns(PersistWarning, match="file"):
        loaded = load(handle, mmap_mode="r")
    assert type(loaded["a"]) is np.ndarray


def test_non_seekable_file_object() -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            return self._data.readinto(buffer)

    buffer = io.BytesIO()
    dump([np.arange(100_000), "x"], buffer, compress="lz4")
    loaded = load(Pipe(buffer.getvalue()))
    assert np.array_equal(loaded[0], np.arange(100_000))


def test_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        dump(1, 12345)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        dump(1, tmp_path / "a", protocol=99)
    dump(1, tmp_path / "a")
    with pytest.raises(ConfigurationError, match="mmap_mode"):
        load(tmp_path / "a", mmap_mode="x")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing")


def test_numeric_buffers_are_byte_shuffled_before_compression(tmp_path: Path) -> None:
    from forklift.persist import reader

    value = {
        "f8": np.round(np.sin(np.arange(700_000) / 500.0), 3),
        "i2": np.arange(2_500_000, dtype="<i2"),
        "c16": np.arange(300_000, dtype=">c16"),
        "u1": np.arange(3_000_000, dtype="u1"),
        "rec": np.zeros(100_000, dtype=[("a", "i1"), ("b", "f8")]),
    }
    from forklift.persist import stream_input

    path = tmp_path / "s.fl"
    dump(value, path, compress=("zlib", 1))
    with open(path, "rb") as handle:  # the zlib stream's content: a forklift file
        content = stream_input.open_content(handle, "s")
        assert content is not None
        index = reader.read_index(content[0])
    assert [section.shuffle for section in index.buffers] == [8, 2, 16, 0, 0]
    loaded = load(path, ensure_native_byte_order=False)
    for key, array in value.items():
        assert loaded[key].tobytes() == array.tobytes()
    # shuffling is what makes this smooth float64 signal compress well
    import zlib

    plain = len(zlib.compress(value["f8"].tobytes(), 1))
    dump(value["f8"], path, compress=("zlib", 1))
    assert path.stat().st_size < 0.8 * plain


def test_file_with_unregistered_codec_is_unsupported(tmp_path: Path) -> None:
    from forklift.errors import UnsupportedFormatError
    from forklift.persist import compressors

    register_compressor("temporary-test", _Halve(), force=True)
    path = tmp_path / "t.fl"
    dump(np.zeros(1 << 20), path, compress="temporary-test")
    del compressors._REGISTRY["temporary-test"]
    with pytest.raises(UnsupportedFormatError, match="temporary-test"):
        load(path)
