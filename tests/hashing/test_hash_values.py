"""hash() of Python values: equality, type sensitivity, order independence, cycles, errors."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import fractions
import functools
import pathlib
import pickle
import sys
import threading
from decimal import Decimal

import pytest

from forklift.errors import ConfigurationError, HashingError, UnknownHashError
from forklift.hashing import DEFAULT_HASH_NAME, HASH_NAMES, hash

Point = collections.namedtuple("Point", "x y")


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Perm(enum.Flag):
    R = 4
    W = 2


@dataclasses.dataclass
class Box:
    width: int
    items: list[object]


@dataclasses.dataclass
class OtherBox:
    width: int
    items: list[object]


class Plain:
    def __init__(self, a: object, b: object) -> None:
        self.a = a
        self.b = b

    def method(self) -> None:
        pass


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a: object, b: object) -> None:
        self.a = a
        self.b = b


def top_level_function() -> None:
    pass


def other_function() -> None:
    pass


def test_returns_hex_of_the_digest_size() -> None:
    assert DEFAULT_HASH_NAME == "xxh3_128"
    digest = hash([1, 2, 3])
    assert len(digest) == 32
    int(digest, 16)
    assert len(hash(1, hash_name="md5")) == 32
    assert len(hash(1, hash_name="sha1")) == 40
    assert len(hash(1, hash_name="sha256")) == 64


@pytest.mark.parametrize("name", HASH_NAMES)
def test_every_named_digest_works_and_differs(name: str) -> None:
    assert hash({"a": [1, 2]}, hash_name=name) == hash({"a": [1, 2]}, hash_name=name)
    assert hash({"a": [1, 2]}, hash_name=name) != hash({"a": [1, 3]}, hash_name=name)


def test_unknown_hash_name_lists_valid_names() -> None:
    with pytest.raises(UnknownHashError, match="Valid options for 'hash_name' are") as info:
        hash(1, hash_name="crc32")
    assert isinstance(info.value, ConfigurationError)
    assert isinstance(info.value, ValueError)
    for name in ("md5", "sha1", "xxh3_128"):
        assert repr(name) in str(info.value)


@pytest.mark.parametrize(
    "values",
    [
        [1, 1.0, True, "1", b"1", bytearray(b"1"), Decimal(1), fractions.Fraction(1), 1 + 0j],
        [0, 0.0, False, "", b"", None, (), [], {}, set(), frozenset()],
        [[1, 2], (1, 2), {1, 2}, frozenset({1, 2}), range(1, 2), Point(1, 2)],
        [0.0, -0.0],
        [Decimal("1.0"), Decimal("1.00")],
        ["a", "b", "ab", ["a", "b"], ["ab"], [["a"], "b"], [[], []], [[[]]]],
        [{"a": 1}, {"a": 2}, {"b": 1}, {"a": 1, "b": 1}, [("a", 1)]],
        [Color.RED, Color.GREEN, 1, "RED"],
        [Box(1, []), OtherBox(1, []), Box(2, []), (1, [])],
        [top_level_function, other_function, Plain, Slotted, int, float, len, max],
        [pathlib.PurePosixPath("a/b"), pathlib.PureWindowsPath("a/b"), "a/b"],
        [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**200, -(2**200)],
        [datetime.date(2026, 1, 2), datetime.datetime(2026, 1, 2), datetime.time(1, 2)],
        [datetime.timedelta(1), datetime.timedelta(seconds=1), datetime.timedelta(0, 0, 1)],
        [slice(1, 2), slice(1, 2, 1), range(1, 2), range(1, 2, 2)],
        [Plain(1, 2), Plain(2, 1), Slotted(1, 2), Slotted(2, 1)],
        [Perm.R, Perm.W, Perm.R | Perm.W],
        [..., NotImplemented, None],
    ],
)
def test_different_values_and_types_hash_differently(values: list[object]) -> None:
    hashes = [hash(v) for v in values]
    assert len(set(hashes)) == len(values), list(zip(values, hashes, strict=True))


def test_equal_values_hash_alike() -> None:
    now = datetime.datetime(2026, 11, 22, 12, 30, tzinfo=datetime.timezone.utc)
    value = {
        "ints": [0, -1, 2**100],
        "floats": (1.5, float("inf"), -0.0),
        "text": "héllo \ud800",  # a lone surrogate is still hashable
        "bytes": b"\x00\xff",
        "nested": {"set": {1, "a", (2, 3)}, "frozen": frozenset({None})},
        "when": [now, now.date(), now.timetz(), datetime.timedelta(days=3)],
        "exact": [Decimal("3.14"), fractions.Fraction(22, 7), 3 + 4j],
        "where": pathlib.Path("/tmp/x"),
        "what": [Color.RED, Box(3, ["x"]), Point(1, 2), Plain([1], {"k": 2})],
        "how": [top_level_function, Plain.method, len, range(10), slice(None)],
    }
    import copy

    assert hash(value) == hash(copy.deepcopy(value))
    assert hash(value) == hash(pickle.loads(pickle.dumps(value)))
    assert hash([sys, pytest]) == hash([sys, pytest])
    assert hash(sys) != hash(pytest)


def test_nan_is_canonical() -> None:
    inf = float("inf")
    assert hash(float("nan")) == hash(inf - inf)  # a negative NaN on x86
    assert hash(complex(float("nan"), 1)) == hash(complex(inf - inf, 1))
    assert hash(float("nan")) != hash(inf)


def test_dict_and_set_order_is_ignored() -> None:
    forward = {i: str(i) for i in range(100)}
    backward = {i: str(i) for i in reversed(range(100))}
    assert list(forward) != list(backward)
    assert hash(forward) == hash(backward)
    assert hash({"b": [1], "a": {2, 3}}) == hash({"a": {3, 2}, "b": [1]})
    assert hash(set(range(50))) == hash(set(reversed(range(50))))
    # mixed, mutually unorderable keys work (sorting is by entry digests, not by values)
    assert hash({1: "a", "1": "b", None: "c", (1,): "d"}) == hash(
        {(1,): "d", None: "c", "1": "b", 1: "a"}
    )
    assert hash({1, "1", None, 1.5}) == hash({1.5, None, "1", 1})


def test_dict_keys_and_values_stay_paired() -> None:
    assert hash({"a": 1, "b": 2}) != hash({"a": 2, "b": 1})
    assert hash({1: 2}) != hash({2: 1})


def test_object_state_order_is_ignored() -> None:
    one = Plain(1, 2)
    two = Plain.__new__(Plain)
    two.b = 2
    two.a = 1
    assert list(vars(one)) != list(vars(two))
    assert hash(one) == hash(two)


def test_same_structure_different_identity() -> None:
    shared = [1, 2]
    assert hash([shared, shared]) == hash([[1, 2], [1, 2]])


def test_cycles_terminate_and_are_distinguished() -> None:
    looped: list[object] = [1]
    looped.append(looped)
    other: list[object] = [1]
    other.append(other)
    assert hash(looped) == hash(other)
    assert hash(looped) != hash([1, []])

    d: dict[str, object] = {"x": 1}
    d["self"] = d
    assert isinstance(hash(d), str)

    node = Plain(1, None)
    node.b = node
    twin = Plain(1, None)
    twin.b = twin
    assert hash(node) == hash(twin)

    box = Box(1, [])
    box.items.append(box)
    assert isinstance(hash(box), str)

    s: list[object] = []
    t = (s,)
    s.append(t)
    assert isinstance(hash(t), str)


def test_functions_by_qualified_name() -> None:
    assert hash(top_level_function) == hash(top_level_function)
    assert hash(Plain(1, 2).method) == hash(Plain(1, 2).method)
    assert hash(Plain(1, 2).method) != hash(Plain(1, 3).method)
    assert hash(functools.partial(max, 1)) == hash(functools.partial(max, 1))
    assert hash(functools.partial(max, 1)) != hash(functools.partial(max, 2))
    assert hash([1].append) != hash([2].append)
    assert hash(str.upper) != hash(str.lower)


def test_big_payloads_stream() -> None:
    big = b"x" * (3 << 20)
    text = "y" * (3 << 20)
    assert hash(big) == hash(bytes(bytearray(big)))
    assert hash(big) != hash(bytearray(big))
    assert hash(text) == hash("".join(["y"] * (3 << 20)))
    assert hash(text) != hash(big)
    # a long list flushes its record buffer part way; still equal to itself
    many = list(range(300_000))
    assert hash(many) == hash(list(range(300_000)))
    assert hash(many) != hash([*many[:-1], -1])


def test_unreducible_objects_raise_hashing_error() -> None:
    with pytest.raises(HashingError, match="lock") as info:
        hash({"lock": threading.Lock()})
    assert isinstance(info.value, pickle.PicklingError)


def test_subclasses_of_builtins_are_not_their_base() -> None:
    class MyDict(dict[str, int]):
        pass

    class MyStr(str):
        __slots__ = ()

    assert hash(MyDict(a=1)) != hash({"a": 1})
    assert hash(MyDict(a=1)) == hash(MyDict(a=1))
    assert hash(MyStr("a")) != hash("a")


def test_timezones() -> None:
    plus1 = datetime.timezone(datetime.timedelta(hours=1))
    naive = datetime.datetime(2026, 1, 1, 12)
    assert hash(naive) != hash(naive.replace(tzinfo=datetime.timezone.utc))
    assert hash(naive.replace(tzinfo=plus1)) != hash(naive.replace(tzinfo=datetime.timezone.utc))
    assert hash(naive.replace(fold=1)) != hash(naive)
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        paris = zoneinfo.ZoneInfo("Europe/Paris")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time zone database here")
    assert hash(naive.replace(tzinfo=paris)) == hash(
        naive.replace(tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    )


def _make_adder(k: int) -> object:
    return lambda x: x + k


def test_unreachable_functions_hash_by_code_and_closure() -> None:
    def square(x: int) -> int:
        return x * x

    def cube(x: int) -> int:
        return x * x * x

    first = lambda x: x + 1  # noqa: E731 - lambdas are the point here
    second = lambda x: x * 2  # noqa: E731
    assert hash(first) != hash(second)
    assert hash(first) == hash(lambda x: x + 1)
    assert hash(square) != hash(cube)
    assert hash(_make_adder(1)) == hash(_make_adder(1))
    assert hash(_make_adder(1)) != hash(_make_adder(2))

    def recursive(n: int) -> int:
        return 1 if n <= 1 else n * recursive(n - 1)

    assert hash(recursive) == hash(recursive)  # its closure holds itself


def test_ordered_dict_order_counts() -> None:
    a = collections.OrderedDict([("x", 1), ("y", 2)])
    b = collections.OrderedDict([("y", 2), ("x", 1)])
    assert hash(a) != hash(b)
    assert hash(a) == hash(collections.OrderedDict([("x", 1), ("y", 2)]))
    assert hash(a) != hash(dict(a))
    assert hash(collections.defaultdict(list, {"a": [1], "b": [2]})) == hash(
        collections.defaultdict(list, {"b": [2], "a": [1]})
    )
    assert hash(collections.Counter("abca")) == hash(collections.Counter("acab"))
    assert hash(collections.deque([1, 2])) != hash(collections.deque([2, 1]))


def test_copyreg_reducers_are_used_like_pickle_does() -> None:
    import re

    assert hash(re.compile("a+", re.IGNORECASE)) == hash(re.compile("a+", re.IGNORECASE))
    assert hash(re.compile("a+")) != hash(re.compile("a+", re.IGNORECASE))
    assert hash(re.compile("a+")) != hash(re.compile("b+"))


def test_concurrent_hashing_from_threads_agrees() -> None:
    from concurrent.futures import ThreadPoolExecutor

    values = [{"n": i, "items": list(range(i)), "s": {str(i)}} for i in range(200)]
    expected = [hash(v) for v in values]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            assert list(pool.map(hash, values)) == expected


def test_memoryviews() -> None:
    data = bytes(range(24))
    flat = memoryview(data)
    assert hash(flat) == hash(memoryview(bytearray(data)))
    assert hash(flat) != hash(data)
    assert hash(flat.cast("B", (4, 6))) != hash(flat)
    assert hash(flat[::2]) == hash(memoryview(data[::2]))
    assert hash(flat.cast("i")) != hash(flat)
