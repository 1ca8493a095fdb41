"""Files written by joblib: the shared samples, and fresh files from the installed joblib."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from forklift.errors import CorruptFileError
from forklift.persist import dump, inspect_file, load

np = pytest.importorskip("numpy")

SAMPLES = Path("/work/shared/data/joblib-files")
MAIN_SAMPLES = (
    sorted(
        path for path in SAMPLES.glob("joblib_*") if not re.search(r"_\d\d\.npy(\.z)?$", path.name)
    )
    if SAMPLES.is_dir()
    else []
)


def _check_sample(loaded: list[Any], python2: bool) -> None:
    assert len(loaded) == 6
    ints, floats, objects, raw, matrix, text = loaded
    assert ints.dtype == np.dtype("<i8")
    assert ints.tolist() == [0, 1, 2, 3, 4]
    assert floats.dtype == np.dtype("<f8")
    assert floats.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert objects.dtype == object
    assert objects.tolist() == [1, "abc", {"a": 1, "b": 2}]
    expected_raw = bytes(range(256))
    # Python 2 byte strings are read with latin-1, as joblib and numpy do.
    assert raw == (expected_raw.decode("latin-1") if python2 else expected_raw)
    assert type(matrix) is np.matrix
    assert matrix.dtype == np.dtype("<i8")
    assert matrix.tolist() == [[0, 1, 2]]
    assert text == "C'est l'été !"


@pytest.mark.skipif(not MAIN_SAMPLES, reason="joblib sample files not available")
@pytest.mark.parametrize("path", MAIN_SAMPLES, ids=[p.name for p in MAIN_SAMPLES])
def test_every_joblib_sample_loads(path: Path) -> None:
    _check_sample(load(path), python2="_py27_" in path.name)


@pytest.mark.skipif(not MAIN_SAMPLES, reason="joblib sample files not available")
@pytest.mark.parametrize("path", MAIN_SAMPLES, ids=[p.name for p in MAIN_SAMPLES])
def test_every_joblib_sample_loads_safely_and_inspects(path: Path) -> None:
    from forklift.persist import SAFE_GLOBALS

    _check_sample(load(path, allowed_globals=SAFE_GLOBALS), python2="_py27_" in path.name)
    report = inspect_file(path)
    assert report.format == "joblib"
    assert not report.unsafe_globals()


def test_sample_file_objects_and_mmap() -> None:
    if not MAIN_SAMPLES:
        pytest.skip("joblib sample files not available")
    path = SAMPLES / "joblib_0.11.0_pickle_py36_np111.pkl"
    with open(path, "rb") as handle:
        _check_sample(load(handle), python2=False)
    loaded = load(path, mmap_mode="r")
    assert isinstance(loaded[0], np.memmap)
    _check_sample(loaded, python2=False)
    old = load(SAMPLES / "joblib_0.9.2_pickle_py35_np19.pkl", mmap_mode="r")
    assert isinstance(old[0], np.memmap)
    _check_sample(old, python2=False)


@pytest.fixture(scope="module")
def joblib_module() -> Any:
    return pytest.importorskip("joblib")


def _varied() -> dict[str, Any]:
    return {
        "c": np.arange(30_000.0).reshape(300, 100),
        "f": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "be": np.arange(10, dtype=">i4"),
        "o": np.array([None, "s", 3], dtype=object),
        "empty": np.zeros((0, 3)),
        "scalar": np.array(2.5),
        "list": [1, "two", b"three", {"four": 4.0}],
        "m": np.arange(4).reshape(2, 2).view(np.matrix),
    }


@pytest.mark.parametrize("compress", [0, 3, "gzip", "bz2", "lzma", "xz", "lz4"])
def test_files_written_by_installed_joblib(
    joblib_module: Any, tmp_path: Path, compress: Any
) -> None:
    value = _varied()
    path = tmp_path / "joblib.pkl"
    joblib_module.dump(value, path, compress=compress)
    # exactly as stored (by default arrays are converted to native byte order, as in joblib)
    loaded = load(path, ensure_native_byte_order=False)
    assert loaded.keys() == value.keys()
    for key, expected in value.items():
        if isinstance(expected, np.ndarray):
            assert type(loaded[key]) is type(expected)
            assert loaded[key].dtype == expected.dtype
            assert loaded[key].shape == expected.shape
            assert np.array_equal(loaded[key], expected)
        else:
            assert loaded[key] == expected
    assert loaded["f"].flags.f_contiguous
    report = inspect_file(path)
    assert {a.shape for a in report.arrays} >= {(300, 100), (2, 3), (0, 3)}


def test_truncated_joblib_file_is_a_forklift_error(joblib_module: Any, tmp_path: Path) -> None:
    path = tmp_path / "joblib.pkl"
    joblib_module.dump(_varied(), path)
    data = path.read_bytes()
    for cut in (1, 10, len(data) // 2, len(data) - 3):
        path.write_bytes(data[:cut])
        with pytest.raises(CorruptFileError, match=str(path)):
            load(path)


def test_forklift_files_are_not_mistaken_for_joblib(tmp_path: Path) -> None:
    dump([1, 2], tmp_path / "x.pkl")
    assert inspect_file(tmp_path / "x.pkl").format == "forklift"
    (tmp_path / "text.txt").write_text("hello")
    with pytest.raises(CorruptFileError, match="neither a forklift file nor a joblib file"):
        load(tmp_path / "text.txt")


@pytest.mark.parametrize("codec", ["gzip", "xz", "trailing"])
def test_a_compressed_stream_is_checked_past_the_pickle_end(tmp_path: Path, codec: str) -> None:
    # joblib's reader stops at the pickle's STOP: a stream damaged after it loaded silently
    import gzip
    import lzma
    import pickle

    from forklift import SAFE_GLOBALS

    pickled = pickle.dumps({"x": [1, 2]}, protocol=2)
    if codec == "gzip":
        data = bytearray(gzip.compress(pickled))
        data[-8] ^= 0xFF  # the CRC-32 of the content
    elif codec == "xz":
        data = bytearray(lzma.compress(pickled, lzma.FORMAT_XZ))
        data[-1] ^= 0xFF  # the stream footer's magic
    else:  # a damaged forklift codec stream can decode to bytes that unpickle, then go on
        data = bytearray(gzip.compress(pickled + b"garbage"))
    path = tmp_path / f"damaged.{codec}"
    path.write_bytes(bytes(data))
    for allowed in (None, SAFE_GLOBALS):
        with pytest.raises(CorruptFileError, match=str(path)):
            load(path, allowed_globals=allowed)
