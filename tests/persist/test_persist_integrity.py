"""Damaged files raise forklift errors naming the file; writes are atomic."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import pytest

from forklift.errors import CorruptFileError, ForkliftError, UnsupportedFormatError
from forklift.persist import dump, load, register_compressor

np = pytest.importorskip("numpy")

SAMPLES = Path("/work/shared/data/joblib-files")


def _value() -> dict[str, Any]:
    return {
        "big": np.arange(1_200_000, dtype="<f8"),  # two chunks
        "mid": np.arange(30_000, dtype=">i4"),
        "small": np.arange(5),
        "text": "hello" * 100,
        "obj": np.array([1, "x"], dtype=object),
    }


def _equal(loaded: Any, value: dict[str, Any]) -> bool:
    return (
        isinstance(loaded, dict)
        and loaded.keys() == value.keys()
        and all(np.array_equal(loaded[k], value[k]) for k in ("big", "mid", "small"))
        and loaded["text"] == value["text"]
    )


@pytest.mark.parametrize("compress", [0, 3, "lz4"])
def test_every_truncation_point_class_is_detected(tmp_path: Path, compress: Any) -> None:
    value = _value()
    path = tmp_path / "v.fl"
    dump(value, path, compress=compress)
    data = path.read_bytes()
    rng = random.Random(0)
    cuts = {0, 1, 8, 63, 64, 65, len(data) - 1, len(data) - 32, len(data) - 33}
    cuts |= {rng.randrange(len(data)) for _ in range(40)}
    damaged = tmp_path / "cut.fl"
    for cut in sorted(cuts):
        damaged.write_bytes(data[:cut])
        with pytest.raises(CorruptFileError, match=str(damaged)):
            load(damaged)


@pytest.mark.parametrize("compress", [0, 3, "zstd"])
def test_bit_flips_give_only_forklift_errors(tmp_path: Path, compress: Any) -> None:
    value = _value()
    path = tmp_path / "v.fl"
    dump(value, path, compress=compress)
    data = bytearray(path.read_bytes())
    rng = random.Random(1)
    damaged = tmp_path / "flip.fl"
    detected = 0
    positions = [rng.randrange(len(data)) for _ in range(80)]
    positions += list(range(0, 64, 3)) + list(range(len(data) - 32, len(data)))
    for position in positions:
        flipped = bytearray(data)
        flipped[position] ^= 1 << rng.randrange(8)
        damaged.write_bytes(flipped)
        try:
            loaded = load(damaged, verify=True)
        except ForkliftError as exc:
            message = str(exc)
            detected += 1
            assert str(damaged) in message
        else:  # only padding bytes or the header flags may change harmlessly
            assert _equal(loaded, value), f"undetected damage at byte {position}"
        # without verify, damage inside raw array bytes may load; anything else still fails
        with contextlib.suppress(ForkliftError):
            load(damaged)
    assert detected > len(positions) // 2


def test_flip_inside_array_data_is_a_checksum_error(tmp_path: Path) -> None:
    path = tmp_path / "v.fl"
    dump({"a": np.arange(1_000_000.0)}, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(data)
    with pytest.raises(CorruptFileError, match="checksum"):
        load(path, verify=True)


@pytest.mark.parametrize("compress", [3, "lz4"])
def test_flip_inside_compressed_data_is_always_detected(tmp_path: Path, compress: Any) -> None:
    path = tmp_path / "v.fl"
    dump({"a": np.arange(1_000_000.0)}, path, compress=compress)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x10
    path.write_bytes(data)
    # caught by forklift's checksum or by the codec stream's own check
    with pytest.raises(CorruptFileError, match=r"checksum|damaged"):
        load(path)


def test_flip_inside_the_pickle_stream_is_always_detected(tmp_path: Path) -> None:
    path = tmp_path / "v.fl"
    dump({"key": "value" * 10}, path)
    data = bytearray(path.read_bytes())
    data[64 + 20] ^= 0x01
    path.write_bytes(data)
    with pytest.raises(CorruptFileError, match="checksum"):
        load(path)


def test_newer_major_version_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "v.fl"
    dump([1], path)
    data = bytearray(path.read_bytes())
    data[8] = 9
    path.write_bytes(data)
    with pytest.raises(UnsupportedFormatError, match=r"format 9\.\d"):
        load(path)


def test_writable_mmap_keeps_later_loads_working(tmp_path: Path) -> None:
    path = tmp_path / "v.fl"
    dump({"a": np.zeros(100_000)}, path)
    mapped = load(path, mmap_mode="r+")
    mapped["a"][:10] = 1.0
    mapped["a"].flush()
    del mapped
    assert load(path)["a"][:10].sum() == 10.0
    # verify=True checks the changed data against the stale checksums (a flag alone never
    # skips a check) and says what happened
    with pytest.raises(CorruptFileError, match="verify=False"):
        load(path, verify=True)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="joblib sample files not available")
@pytest.mark.parametrize(
    "name",
    [
        "joblib_0.11.0_pickle_py36_np111.pkl",
        "joblib_0.11.0_pickle_py36_np111.pkl.gzip",
        "joblib_0.10.0_compressed_pickle_py35_np19.gz",
        "joblib_0.9.2_compressed_pickle_py35_np19.gz",
    ],
)
def test_damaged_joblib_files_give_only_forklift_errors(tmp_path: Path, name: str) -> None:
    data = (SAMPLES / name).read_bytes()
    rng = random.Random(2)
    damaged = tmp_path / name
    for _ in range(60):
        flipped = bytearray(data)
        if rng.random() < 0.3:
            flipped = flipped[: rng.randrange(len(flipped))]
        else:
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        damaged.write_bytes(flipped)
        # undetectable damage (joblib's format has no checksums) may load: no error then
        with contextlib.suppress(ForkliftError):
            load(damaged)


# -- atomic writes ---------------------------------------------------------------------------


def test_failed_dump_leaves_target_and_directory_untouched(tmp_path: Path) -> None:
    path = tmp_path / "keep.fl"
    dump("original", path)
    with pytest.raises((AttributeError, TypeError, Exception)):
        dump({"a": np.arange(100_000), "f": lambda: None}, path)
    assert load(path) == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.fl"]


class _FailsLater:
    extensions = (".never",)
    parallel = True

    def __init__(self) -> None:
        self.calls = 0

    def compress(self, data: memoryview, level: int) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise OSError("disk full (simulated by the codec)")
        return bytes(data[: len(data) // 2])

    def decompress(self, data: bytes, raw_length: int) -> bytes:
        raise AssertionError


def test_failure_mid_write_removes_temporary_file(tmp_path: Path) -> None:
    register_compressor("fails-later-test", _FailsLater(), force=True)
    path = tmp_path / "target.fl"
    with pytest.raises(OSError, match="disk full"):
        dump(np.arange(3_000_000.0), path, compress="fails-later-test")
    assert list(tmp_path.iterdir()) == []


def test_dump_replaces_existing_file_with_normal_permissions(tmp_path: Path) -> None:
    import os
    import stat

    path = tmp_path / "p.fl"
    dump(1, path)
    dump(2, path)
    assert load(path) == 2
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_default_load_skips_only_raw_buffer_checksums(tmp_path: Path) -> None:
    path = tmp_path / "v.fl"
    dump({"a": np.zeros(1_000_000)}, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(data)
    with pytest.raises(CorruptFileError, match="checksum"):
        load(path, verify=True)
    assert np.count_nonzero(load(path)["a"]) == 1
