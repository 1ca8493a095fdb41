"""hash() of numpy arrays, scalars and dtypes, memmaps, and pandas objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from forklift.hashing import hash

np = pytest.importorskip("numpy")


def test_equal_arrays_hash_alike_and_content_matters() -> None:
    a = np.arange(1000, dtype=np.float64)
    assert hash(a) == hash(a.copy())
    b = a.copy()
    b[500] += 1e-12
    assert hash(a) != hash(b)


def test_dtype_shape_and_byte_order_matter() -> None:
    a = np.arange(12, dtype="<i8")
    variants = [
        a,
        a.reshape(3, 4),
        a.reshape(4, 3),
        a.astype("<i4"),
        a.astype("<f8"),
        a.astype(">i8"),  # same values, other byte order: a different dtype
        a.view("<f8"),  # same bytes, other dtype
        a.view("<u8"),
    ]
    hashes = {hash(v) for v in variants}
    assert len(hashes) == len(variants)
    assert hash(a.astype(">i8")) == hash(np.arange(12, dtype=">i8"))


def test_c_and_fortran_order_of_the_same_data_differ() -> None:
    c = np.arange(12.0).reshape(3, 4)
    f = np.asfortranarray(c)
    assert f.flags.f_contiguous
    assert not f.flags.c_contiguous
    assert (c == f).all()
    assert hash(c) != hash(f)
    assert hash(f) == hash(np.asfortranarray(c.copy()))
    # 1-d arrays are both C- and F-contiguous: one hash
    assert hash(np.arange(4.0)) == hash(np.asfortranarray(np.arange(4.0)))


def test_non_contiguous_views_hash_like_their_c_copy() -> None:
    base = np.arange(600.0).reshape(20, 30)
    for view in (base[::2], base[:, ::3], base.T[::2], base[::-1], base[3:9, 5:7]):
        assert hash(view) == hash(np.ascontiguousarray(view))
    assert hash(base[:, ::2]) != hash(base[:, 1::2])


def test_non_contiguous_views_copied_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Exercise every branch of the block copier with a tiny block size.
    from forklift.hashing import arrays

    base = np.arange(4000.0).reshape(10, 20, 20)
    views = [base[:, ::2], base[:, :, ::2], base[::2, ::2, ::3], base.reshape(-1)[::3]]
    expected = [hash(np.ascontiguousarray(v)) for v in views]
    monkeypatch.setattr(arrays, "COPY_BLOCK", 64)
    assert [hash(v) for v in views] == expected


def test_zero_d_and_zero_size_arrays() -> None:
    zero_d = np.array(3.5)
    assert hash(zero_d) == hash(np.array(3.5))
    assert hash(zero_d) != hash(np.array([3.5]))
    assert hash(zero_d) != hash(np.float64(3.5))  # an array is not a scalar
    empties = [np.zeros(0), np.zeros((0, 3)), np.zeros((3, 0)), np.zeros(0, dtype="i8")]
    assert len({hash(e) for e in empties}) == len(empties)
    assert hash(np.zeros((0, 3))) == hash(np.ones((0, 3)))


def test_object_arrays_go_element_wise() -> None:
    a = np.array([{"b": 1, "a": 2}, [1, 2], "x", None], dtype=object)
    b = np.array([{"a": 2, "b": 1}, [1, 2], "x", None], dtype=object)
    assert hash(a) == hash(b)  # pointer values differ, contents do not
    b[2] = "y"
    assert hash(a) != hash(b)
    grid = np.empty((2, 3), dtype=object)
    grid[:] = [["a", 1, 2.0], [None, (), "z"]]
    assert hash(grid) == hash(grid.copy())
    assert hash(grid) != hash(np.asfortranarray(grid))
    assert hash(grid[:, ::2]) == hash(np.ascontiguousarray(grid[:, ::2]))
    cyclic = np.empty(1, dtype=object)
    cyclic[0] = cyclic
    assert isinstance(hash(cyclic), str)


def test_structured_and_special_dtypes() -> None:
    packed = np.dtype([("a", "<i4"), ("b", "<f8")])
    aligned = np.dtype([("a", "<i4"), ("b", "<f8")], align=True)
    renamed = np.dtype([("a", "<i4"), ("c", "<f8")])
    arrays = [np.zeros(3, dtype=d) for d in (packed, aligned, renamed)]
    assert len({hash(a) for a in arrays}) == 3
    assert hash(np.zeros(3, dtype=packed)) == hash(np.zeros(3, dtype=packed))
    with_object = np.array([(1, "x")], dtype=[("n", "i8"), ("o", object)])
    assert hash(with_object) == hash(np.array([(1, "x")], dtype=[("n", "i8"), ("o", object)]))
    dates = np.array(["2026-01-01", "2026-01-02"], dtype="datetime64[D]")
    assert hash(dates) != hash(dates.astype("datetime64[s]"))
    assert hash(dates[::-1]) == hash(np.ascontiguousarray(dates[::-1]))
    assert hash(np.array(["ab", "c"])) != hash(np.array([b"ab", b"c"]))


def test_scalars_and_dtypes() -> None:
    assert hash(np.float64(1.0)) == hash(np.float64(1.0))
    distinct = [np.float64(1), np.float32(1), np.int64(1), 1.0, 1, np.bool_(True), True]
    assert len({hash(x) for x in distinct}) == len(distinct)
    assert hash(np.str_("a")) != hash("a")
    assert hash(np.datetime64("2026-01-01")) == hash(np.datetime64("2026-01-01"))
    assert hash(np.dtype("<f8")) != hash(np.dtype(">f8"))
    assert hash(np.dtype("f8")) == hash(np.float64(0).dtype)
    assert hash(np.float64) != hash(np.dtype("f8"))  # a class is not a dtype


def test_memmap_coercion(tmp_path: Path) -> None:
    data = np.arange(100.0)
    path = tmp_path / "data.bin"
    data.tofile(path)
    mapped = np.memmap(path, dtype=np.float64, mode="r", shape=(100,))
    try:
        assert hash(mapped) != hash(data)  # joblib's default: the class counts
        assert hash(mapped, coerce_mmap=True) == hash(data)
        assert hash(mapped, coerce_mmap=True) == hash(data, coerce_mmap=True)
        other = tmp_path / "copy.bin"
        data.tofile(other)
        mapped2 = np.memmap(other, dtype=np.float64, mode="r", shape=(100,))
        try:
            # the file name is not part of the value
            assert hash(mapped) == hash(mapped2)
        finally:
            del mapped2
    finally:
        del mapped


def test_ndarray_subclass_state_counts() -> None:
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False])
    other = np.ma.masked_array([1.0, 2.0, 3.0], mask=[True, False, False])
    assert hash(masked) != hash(other)
    assert hash(masked) != hash(np.array([1.0, 2.0, 3.0]))
    assert hash(masked) == hash(masked.copy())


def test_arrays_inside_containers() -> None:
    a = np.arange(10**6, dtype=np.float64)  # large enough to stream inside a dict entry
    assert hash({"x": a, "y": [a, 1]}) == hash({"y": [a.copy(), 1], "x": a.copy()})
    assert hash({"x": a}) != hash({"x": a[::-1]})


def test_pandas_objects() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [0.5, float("nan"), 2]})
    assert hash(df) == hash(df.copy())
    assert hash(df) != hash(df[["b", "a", "c"]])
    assert hash(df) != hash(df.set_axis([10, 11, 12]))
    changed = df.copy()
    changed.loc[1, "a"] = 5
    assert hash(df) != hash(changed)
    s = pd.Series([1.0, 2.0], index=["p", "q"], name="s")
    assert hash(s) == hash(s.copy())
    assert hash(s) != hash(s.rename("t"))
    assert hash(s) != hash(s.to_frame())
    cat = pd.Series(pd.Categorical(["a", "b", "a"]))
    assert hash(cat) == hash(pd.Series(pd.Categorical(["a", "b", "a"])))
    assert hash(cat) != hash(cat.astype(str))
    multi = pd.MultiIndex.from_tuples([(1, "a"), (2, "b")], names=["n", "l"])
    assert hash(multi) == hash(pd.MultiIndex.from_tuples([(1, "a"), (2, "b")], names=["n", "l"]))
    tz = pd.Series(pd.date_range("2026-01-01", periods=3, tz="UTC"))
    assert hash(tz) == hash(tz.copy())
    assert hash(tz) != hash(tz.dt.tz_localize(None))


def test_ufuncs_hash_by_name() -> None:
    assert hash(np.add) == hash(np.add)
    assert hash(np.add) != hash(np.multiply)


@pytest.mark.parametrize("name", ["md5", "sha1", "blake2b", "sha256", "xxh3_128"])
def test_arrays_with_every_digest(name: str) -> None:
    a = np.arange(300_000.0)  # above the direct-feed threshold: streamed
    assert hash(a, hash_name=name) == hash(a.copy(), hash_name=name)
    assert hash(a, hash_name=name) != hash(a[::-1], hash_name=name)
    assert hash(a[::2], hash_name=name) == hash(a[::2].copy(), hash_name=name)


def test_memmap_views_and_coercion_in_containers(tmp_path: Path) -> None:
    data = np.arange(60.0).reshape(6, 10)
    path = tmp_path / "grid.bin"
    data.tofile(path)
    mapped = np.memmap(path, dtype=np.float64, mode="r", shape=(6, 10))
    try:
        view = mapped[::2, 1:4]
        assert hash(view, coerce_mmap=True) == hash(data[::2, 1:4])
        assert hash({"a": [mapped]}, coerce_mmap=True) == hash({"a": [data]})
        assert hash({"a": [mapped]}) != hash({"a": [data]})
    finally:
        del mapped, view


def test_pandas_metadata_counts() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2]})
    tagged = df.copy()
    tagged.attrs["units"] = "m"
    assert hash(df) != hash(tagged)

    class Geo(pd.DataFrame):
        _metadata = ["crs"]  # noqa: RUF012 - pandas's own convention

        @property
        def _constructor(self) -> type:
            return Geo

    one = Geo({"x": [1.0]})
    one.crs = "EPSG:4326"
    two = Geo({"x": [1.0]})
    two.crs = "EPSG:3857"
    assert hash(one) != hash(two)
    assert hash(one) != hash(pd.DataFrame({"x": [1.0]}))
