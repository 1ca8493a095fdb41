"""Stability: pinned golden digests, and equal digests in separate processes.

A golden value that changes means the encoding changed: that needs a bump of
ENCODING_VERSION (every cache key changes with it), never a silent edit of this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from forklift.hashing import ENCODING_VERSION, hash

# Builds `values`, a dict of name -> value; run here and in child processes.
VALUES_SOURCE = textwrap.dedent(
    """
    import collections, dataclasses, datetime, decimal, enum, fractions, pathlib

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

    Point = collections.namedtuple("Point", "x y")
    values = {
        "none": None,
        "ints": [0, 1, -1, 2**63, -(2**70)],
        "floats": [0.0, -0.0, 1.5, float("inf"), float("nan")],
        "text": ["", "forklift", "h\\u00e9llo", "\\U0001F600"],
        "bytes": [b"", b"\\x00\\xff", bytearray(b"ab")],
        "strset": {"alpha", "beta", "gamma", "delta", "epsilon"},
        "strdict": {s: len(s) for s in ["one", "two", "three", "four", "five", "six"]},
        "mixed": {1: "a", "1": ["b"], None: (2.5, 3j), (1, 2): frozenset({"q", 1})},
        "exact": [decimal.Decimal("3.140"), fractions.Fraction(-1, 3), range(2, 9, 3)],
        "when": [datetime.datetime(2026, 11, 22, 9, 30, 1, 5,
                                   tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
                 datetime.date(2026, 1, 2), datetime.time(23, 59), datetime.timedelta(-1, 5)],
        "where": pathlib.PurePosixPath("/data/input.csv"),
        "objects": [Color.RED, Box(3, ["x"]), Point(1, 2), Plain(), slice(1, None)],
    }
    """
)

# Pinned digests of encoding version 1 (xxh3_128 and md5).
GOLDEN = {
    ("none", "xxh3_128"): "227e12faf1ae0b818b75a4891328b0a3",
    ("int", "xxh3_128"): "e075a553f25fe790c730cdb75deef2e1",
    ("float", "xxh3_128"): "a60279b44f5ed1efce98ce07482a055a",
    ("str", "xxh3_128"): "5cdcd48d892784b848d665f5f046370a",
    ("nested", "xxh3_128"): "63fa8666b9cc2eb72f6f1949fd660735",
    ("set", "xxh3_128"): "30ffc3328a7e8a776f1a28410135481f",
    ("date", "xxh3_128"): "f1335e99e0cc007470f07b381015e34f",
    ("none", "md5"): "18591cd9644ff9737e947959c2deee74",
    ("int", "md5"): "efd062fe622b1b048dd9666926eda53d",
    ("nested", "md5"): "946f92e22eee57c66be0cea51a4609d3",
    ("set", "md5"): "9993da4e7d4b6ea44acb67a3396e7f68",
}
GOLDEN_ARRAYS = {
    "int64 2x3": "306fd62f29fab8cac1421a0f0f928569",
    "float32 6": "3b8702cd5e668812cf56d01948280a2d",
}


def _golden_value(name: str) -> object:
    import datetime

    return {
        "none": None,
        "int": 1,
        "float": 1.0,
        "str": "forklift",
        "nested": {"a": [1, 2.5, "x"], "b": (None, True, b"y")},
        "set": {3, "z"},
        "date": datetime.date(2026, 11, 22),
    }[name]


def test_encoding_version_is_pinned_with_the_golden_values() -> None:
    assert ENCODING_VERSION == 1, "new version: re-pin GOLDEN and note it in the changelog"


@pytest.mark.parametrize(("name", "hash_name"), list(GOLDEN))
def test_golden_values(name: str, hash_name: str) -> None:
    assert hash(_golden_value(name), hash_name=hash_name) == GOLDEN[(name, hash_name)]


def test_golden_arrays() -> None:
    np = pytest.importorskip("numpy")
    assert hash(np.arange(6, dtype="<i8").reshape(2, 3)) == GOLDEN_ARRAYS["int64 2x3"]
    assert hash(np.arange(6, dtype="<f4")) == GOLDEN_ARRAYS["float32 6"]


def _child_hashes(preamble: str, seed: str) -> dict[str, str]:
    script = (
        preamble
        + VALUES_SOURCE
        + textwrap.dedent(
            """
            import json, sys
            from forklift.hashing import hash
            out = {name: hash(value) for name, value in values.items()}
            out["md5:all"] = hash(values, hash_name="md5")
            out["numpy loaded"] = "numpy" in sys.modules
            out["pandas loaded"] = "pandas" in sys.modules
            print(json.dumps(out))
            """
        )
    )
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


def _here_hashes() -> dict[str, str]:
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(VALUES_SOURCE, namespace)
    values = namespace["values"]
    assert isinstance(values, dict)
    out = {name: hash(value) for name, value in values.items()}
    out["md5:all"] = hash(values, hash_name="md5")
    return out


def test_same_hashes_in_separate_processes_and_hash_seeds() -> None:
    # Different PYTHONHASHSEEDs give sets and str-keyed dicts different iteration orders.
    first = _child_hashes("", "1")
    second = _child_hashes("", "4242")
    for result in (first, second):
        assert result.pop("numpy loaded") is False  # hashing plain values never imports numpy
        assert result.pop("pandas loaded") is False
    assert first == second
    assert first == _here_hashes()


def test_pure_python_values_hash_alike_with_or_without_numpy() -> None:
    pytest.importorskip("numpy")
    pytest.importorskip("pandas")
    blocked = _child_hashes("import sys\nsys.modules['numpy'] = None\n", "7")
    loaded = _child_hashes("import numpy, pandas\n", "8")
    assert blocked.pop("numpy loaded") is True  # the None placeholder: import impossible
    assert loaded.pop("numpy loaded") is True
    assert loaded.pop("pandas loaded") is True
    blocked.pop("pandas loaded")
    assert blocked == loaded


def test_arrays_hash_alike_in_separate_processes() -> None:
    np = pytest.importorskip("numpy")
    script = textwrap.dedent(
        """
        import json, numpy as np
        from forklift.hashing import hash
        rng = np.random.default_rng(5)
        a = rng.random((300, 200))
        out = [hash(a), hash(np.asfortranarray(a)), hash(a[::3, ::2]), hash(a.astype(">f4")),
               hash(np.array(["x", {"k": 1}], dtype=object))]
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    rng = np.random.default_rng(5)
    a = rng.random((300, 200))
    here = [
        hash(a),
        hash(np.asfortranarray(a)),
        hash(a[::3, ::2]),
        hash(a.astype(">f4")),
        hash(np.array(["x", {"k": 1}], dtype=object)),
    ]
    assert json.loads(done.stdout) == here
