"""Property tests: hash(x) == hash(y) exactly when x and y are the same value, type for type."""

from __future__ import annotations

import copy
import math
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from forklift.hashing import hash

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.complex_numbers(allow_nan=True)
    | st.text(max_size=10)
    | st.binary(max_size=10)
)
hashables = st.recursive(
    scalars, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=8
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
    ),
    max_leaves=20,
)


def _float_bits(x: float) -> bytes:
    return b"nan" if math.isnan(x) else struct.pack("<d", x)


def same(x: Any, y: Any) -> bool:
    """Type-exact structural equality (-0.0 is not 0.0, every NaN is NaN)."""
    if type(x) is not type(y):
        return False
    if isinstance(x, float):
        return _float_bits(x) == _float_bits(y)
    if isinstance(x, complex):
        return same(x.real, y.real) and same(x.imag, y.imag)
    if isinstance(x, list | tuple):
        return len(x) == len(y) and all(same(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, dict):
        return len(x) == len(y) and all(
            any(same(k, k2) and same(v, v2) for k2, v2 in y.items()) for k, v in x.items()
        )
    if isinstance(x, set | frozenset):
        return len(x) == len(y) and all(any(same(a, b) for b in y) for a in x)
    return bool(x == y)


def _reordered(value: Any) -> Any:
    """The same value with every dict and set built in reverse order."""
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_reordered(v) for v in value)
    if isinstance(value, dict):
        return {_reordered(k): _reordered(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, set | frozenset):
        return type(value)(_reordered(v) for v in reversed(list(value)))
    return value


@given(values)
@settings(max_examples=200, database=None, deadline=None)
def test_equal_values_equal_hashes(value: Any) -> None:
    assert hash(value) == hash(copy.deepcopy(value))
    assert hash(value) == hash(_reordered(value))


@given(values, values)
@settings(
    max_examples=250, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
def test_hashes_equal_exactly_when_values_are_the_same(x: Any, y: Any) -> None:
    assert (hash(x) == hash(y)) == same(x, y)


@given(st.lists(values, min_size=2, max_size=2, unique_by=repr))
@settings(max_examples=150, database=None, deadline=None)
def test_distinct_reprs_distinct_hashes(pair: list[Any]) -> None:
    x, y = pair
    assume(not same(x, y))
    assert hash(x) != hash(y)


np = pytest.importorskip("numpy")
from hypothesis.extra import numpy as hnp  # noqa: E402 - needs numpy, checked just above

dtypes = (
    hnp.integer_dtypes(endianness="=")
    | hnp.floating_dtypes(endianness="=")
    | hnp.boolean_dtypes()
    | hnp.unsigned_integer_dtypes(endianness=">")
)
arrays = hnp.arrays(dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))


@given(arrays)
@settings(max_examples=200, database=None, deadline=None)
def test_arrays_hash_like_copies_and_views_like_their_contiguous_copy(a: Any) -> None:
    assert hash(a) == hash(a.copy())
    if a.ndim:
        view = a[::-1]
        assert hash(view) == hash(np.ascontiguousarray(view))
    if a.ndim >= 2:
        view = a[:, ::2]
        assert hash(view) == hash(np.ascontiguousarray(view))


@given(arrays, arrays)
@settings(max_examples=200, database=None, deadline=None)
def test_arrays_hash_equal_exactly_when_dtype_shape_and_bytes_are(a: Any, b: Any) -> None:
    identical = a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    assert (hash(a) == hash(b)) == identical
