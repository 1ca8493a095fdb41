"""Values whose hashes must agree across processes and Python versions.

Read as source text by test_hash_stability.py and run in child interpreters (so it imports
nothing but the standard library), and run in the test process itself.
"""

import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import pathlib


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Box:
    width: int
    items: list


class Plain:
    def __init__(self):
        self.b = [1, 2]
        self.a = {"k": {"z", "y", "x"}}


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a = 1
        self.b = "two"


class Reduced:
    def __init__(self, n):
        self.n = n

    def __reduce__(self):
        return (Reduced, (self.n,))


Point = collections.namedtuple("Point", "x y")
values = {
    "none": None,
    "ints": [0, 1, -1, 2**63, -(2**70)],
    "floats": [0.0, -0.0, 1.5, float("inf"), float("nan")],
    "text": ["", "forklift", "h\u00e9llo", "\U0001f600"],
    "bytes": [b"", b"\x00\xff", bytearray(b"ab")],
    "strset": {"alpha", "beta", "gamma", "delta", "epsilon"},
    "strdict": {s: len(s) for s in ["one", "two", "three", "four", "five", "six"]},
    "mixed": {1: "a", "1": ["b"], None: (2.5, 3j), (1, 2): frozenset({"q", 1})},
    "exact": [decimal.Decimal("3.140"), fractions.Fraction(-1, 3), range(2, 9, 3)],
    "when": [
        datetime.datetime(
            2026, 11, 22, 9, 30, 1, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        ),
        datetime.date(2026, 1, 2),
        datetime.time(23, 59),
        datetime.timedelta(-1, 5),
    ],
    "where": pathlib.PurePosixPath("/data/input.csv"),
    "objects": [Color.RED, Box(3, ["x"]), Point(1, 2), Plain(), slice(1, None), Slotted()],
    "reduced": [Reduced(3), collections.OrderedDict(a=1, b=2), collections.deque([1, 2])],
    "stdlib": [collections.Counter("hello"), collections.defaultdict(list, a=[1]), len, max],
}
