"""Round trips through forklift's own format: every dtype and layout, exactly."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from forklift.persist import dump, load  # noqa: E402


def assert_same(loaded: Any, original: Any) -> None:
    assert type(loaded) is type(original) or (
        isinstance(original, np.memmap) and type(loaded) is np.ndarray
    )
    if isinstance(original, np.ndarray):
        assert loaded.dtype == original.dtype
        assert loaded.shape == original.shape
        if original.dtype.hasobject:
            assert loaded.tolist() == original.tolist()
        else:  # bit-exact (NaN, NaT and -0.0 included), whatever the memory layout
            assert loaded.tobytes() == original.tobytes()
        if isinstance(original, np.ma.MaskedArray):
            assert np.array_equal(np.ma.getmaskarray(loaded), np.ma.getmaskarray(original))
            assert loaded.fill_value == original.fill_value
    elif isinstance(original, dict):
        assert loaded.keys() == original.keys()
        for key in original:
            assert_same(loaded[key], original[key])
    elif isinstance(original, list | tuple):
        assert len(loaded) == len(original)
        for a, b in zip(loaded, original, strict=True):
            assert_same(a, b)
    else:
        assert loaded == original


def roundtrip(tmp_path: Path, value: Any, **kwargs: Any) -> Any:
    path = tmp_path / "value.fl"
    assert dump(value, path, **kwargs) == [str(path)]
    # Exactly as stored: load() converts byte orders by default, as joblib's does.
    return load(path, ensure_native_byte_order=False)


LARGE = 50_000  # elements: large enough for every dtype to be stored out of band


@pytest.mark.parametrize(
    "dtype",
    [
        "i1",
        "<i2",
        ">i2",
        "<i4",
        ">i4",
        "<i8",
        ">i8",
        "u1",
        "<u8",
        ">u8",
        "<f2",
        "<f4",
        ">f4",
        "<f8",
        ">f8",
        "<c8",
        ">c16",
        "?",
        "S7",
        "<U5",
        ">U5",
        "<M8[ns]",
        ">m8[s]",
        "V3",
        [("a", "<i4"), ("b", ">f8", (2,))],
    ],
)
def test_dtypes_round_trip_exactly(tmp_path: Path, dtype: Any) -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=LARGE * np.dtype(dtype).itemsize, dtype=np.uint8)
    array = raw.view(np.dtype(dtype)) if np.dtype(dtype).kind not in "fcMm" else raw.view(dtype)
    loaded = roundtrip(tmp_path, array)
    assert loaded.dtype == array.dtype
    assert loaded.tobytes() == array.tobytes()


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.arange(60_000.0).reshape(300, 200),
        lambda: np.asfortranarray(np.arange(60_000.0).reshape(300, 200)),
        lambda: np.arange(200_000)[::3],
        lambda: np.arange(60_000.0).reshape(300, 200).T[::2, ::-1],
        lambda: np.zeros((0, 5)),
        lambda: np.zeros((5000, 0)),
        lambda: np.array(3.5),
        lambda: np.array(3.5, dtype=">f8"),
        lambda: np.array([1, "two", {"three": 3}, None], dtype=object),
        lambda: np.arange(40_000.0).reshape(200, 200).view(np.matrix),
        lambda: np.ma.masked_array(
            np.arange(10_000.0), mask=np.arange(10_000) % 3 == 0, fill_value=-1.0
        ),
        lambda: np.arange(3),
        lambda: np.float32(2.5),
    ],
    ids=[
        "c",
        "fortran",
        "strided",
        "transposed-view",
        "zero-size",
        "zero-size-wide",
        "0d",
        "0d-big-endian",
        "object",
        "matrix",
        "masked",
        "tiny",
        "scalar",
    ],
)
@pytest.mark.parametrize("compress", [0, 3, "lz4"])
def test_layouts_round_trip(tmp_path: Path, make: Any, compress: Any) -> None:
    value = make()
    loaded = roundtrip(tmp_path, value, compress=compress)
    assert_same(loaded, value)
    if isinstance(value, np.ndarray) and value.flags.f_contiguous and not value.flags.c_contiguous:
        assert loaded.flags.f_contiguous


def test_loaded_arrays_are_writable_and_readonly_stays_readonly(tmp_path: Path) -> None:
    writable = np.arange(100_000.0)
    frozen = np.arange(100_000.0)
    frozen.flags.writeable = False
    loaded = roundtrip(tmp_path, [writable, frozen])
    assert loaded[0].flags.writeable
    assert not loaded[1].flags.writeable


def test_memmap_loads_as_ndarray(tmp_path: Path) -> None:
    source = np.memmap(tmp_path / "m.dat", dtype="<f8", mode="w+", shape=(300, 100))
    source[:] = 7.0
    loaded = roundtrip(tmp_path, source)
    assert type(loaded) is np.ndarray
    assert np.array_equal(loaded, source)
    del source


def test_shared_array_is_stored_once(tmp_path: Path) -> None:
    array = np.arange(100_000.0)
    loaded = roundtrip(tmp_path, [array, array])
    assert loaded[0] is loaded[1]


def test_mmap_mode_maps_arrays(tmp_path: Path) -> None:
    value = {
        "big": np.arange(300_000.0).reshape(1000, 300),
        "f": np.asfortranarray(np.ones((300, 200))),
        "small": np.arange(4),
    }
    path = tmp_path / "m.fl"
    dump(value, path)
    loaded = load(path, mmap_mode="r")
    assert isinstance(loaded["big"], np.memmap)
    assert loaded["big"].filename == str(path.resolve())
    assert not loaded["big"].flags.writeable
    assert loaded["big"].ctypes.data % 64 == 0 or loaded["big"].offset % 64 == 0
    assert loaded["f"].flags.f_contiguous
    assert np.array_equal(loaded["big"], value["big"])
    del loaded
    loaded = load(path, mmap_mode="r+")
    loaded["big"][0, 0] = -1.0
    loaded["big"].flush()
    del loaded
    assert load(path)["big"][0, 0] == -1.0
    copy = load(path, mmap_mode="c")
    copy["big"][0, 0] = 5.0
    del copy
    assert load(path)["big"][0, 0] == -1.0
    assert isinstance(load(path, mmap_mode="w+")["big"], np.memmap)


def test_without_arrays_and_old_protocols(tmp_path: Path) -> None:
    value = {"a": [1, 2.5, "x", b"y", None, (True, False)], "s": {1, 2}, "b": bytearray(50_000)}
    for protocol in (None, 2, 4, 5):
        assert roundtrip(tmp_path, value, protocol=protocol) == value
    assert_same(roundtrip(tmp_path, np.arange(50_000.0), protocol=4), np.arange(50_000.0))


def test_files_have_aligned_buffers(tmp_path: Path) -> None:
    from forklift.persist import layout, reader

    path = tmp_path / "a.fl"
    dump([np.arange(100_001, dtype="i1"), np.arange(70_000.0)], path)
    with open(path, "rb") as handle:
        index = reader.read_index(reader.Source(handle, str(path)))
    for section in index.buffers:
        assert section.chunks[0][0] % layout.ALIGNMENT == 0
        assert section.contiguous_raw_offset() is not None


# -- property test ---------------------------------------------------------------------------

_dtypes = st.one_of(
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(),
    hnp.complex_number_dtypes(),
    hnp.boolean_dtypes(),
    hnp.datetime64_dtypes(),
    hnp.timedelta64_dtypes(),
    hnp.byte_string_dtypes(min_len=1, max_len=4),
    hnp.unicode_string_dtypes(min_len=1, max_len=4),
)


@st.composite
def arrays(draw: Any) -> Any:
    dtype = draw(_dtypes)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40))
    array = draw(hnp.arrays(dtype, shape))
    layout = draw(st.sampled_from(["C", "F", "strided", "reversed"]))
    if layout == "F":
        array = np.asfortranarray(array)
    elif layout == "strided" and array.ndim:
        array = array[::2]
    elif layout == "reversed" and array.ndim:
        array = array[::-1]
    if draw(st.booleans()):  # make some big enough to go out of band
        array = np.concatenate([array.reshape(-1)] * 1) if array.ndim else array
    return array


_values = st.recursive(
    st.one_of(
        arrays(), st.integers(), st.floats(allow_nan=False), st.text(), st.binary(), st.none()
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=5), children, max_size=4),
        st.tuples(children, children),
    ),
    max_leaves=8,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(value=_values, compress=st.sampled_from([0, 1, "zstd"]))
def test_property_round_trip(tmp_path: Path, value: Any, compress: Any) -> None:
    assert_same(roundtrip(tmp_path, value, compress=compress), value)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(dtype=_dtypes, rows=st.integers(0, 3000), fortran=st.booleans())
def test_property_large_arrays_out_of_band(
    tmp_path: Path, dtype: Any, rows: int, fortran: bool
) -> None:
    array = np.frombuffer(np.random.default_rng(rows).bytes(rows * 7 * dtype.itemsize), dtype)
    array = array.reshape(rows, 7)
    if fortran:
        array = np.asfortranarray(array)
    loaded = roundtrip(tmp_path, {"x": array})
    assert loaded["x"].dtype == array.dtype
    assert loaded["x"].tobytes(order="A") == array.tobytes(order="A")
    assert pickle.dumps(loaded["x"]) == pickle.dumps(array)
