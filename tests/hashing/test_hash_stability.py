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
from pathlib import Path

import pytest

from forklift.hashing import ENCODING_VERSION, hash

# Builds `values`, a dict of name -> value; run here and in child processes (any Python).
VALUES_SOURCE = (Path(__file__).parent / "stable_values.py").read_text(encoding="utf-8")

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
    "int64 2x3": "f42701ee88dc666679e742f1221c6eef",
    "float32 6": "6144887bb2352214c1ac40c2222cee0a",
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


def _other_interpreters() -> list[str]:
    """Python 3.10+ interpreters on this machine other than the one running the tests."""
    import glob
    import shutil

    found = []
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for minor in range(10, 16):
        if minor == sys.version_info.minor:
            continue
        candidates = [shutil.which(f"python3.{minor}")]
        candidates += sorted(
            glob.glob(os.path.join(pyenv, "versions", f"3.{minor}.*", "bin", "python"))
        )
        for path in filter(None, candidates):
            if _runs_as(path, minor):
                found.append(path)
                break
    return found


def _runs_as(path: str, minor: int) -> bool:
    probe = subprocess.run(
        [path, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0 and probe.stdout.strip() == f"(3, {minor})"


def test_same_hashes_across_python_minor_versions() -> None:
    interpreters = _other_interpreters()
    if not interpreters:
        pytest.skip("no other Python 3.10+ interpreter on this machine")
    import forklift.hashing

    # md5 needs only the standard library, so a bare interpreter can run the hashing room.
    src = str(Path(forklift.hashing.__file__).parents[2])
    script = VALUES_SOURCE + textwrap.dedent(
        """
        import json
        from forklift.hashing import hash
        print(json.dumps({name: hash(v, hash_name="md5") for name, v in values.items()}))
        """
    )
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(VALUES_SOURCE, namespace)
    values = namespace["values"]
    assert isinstance(values, dict)
    here = {name: hash(value, hash_name="md5") for name, value in values.items()}
    for interpreter in interpreters:
        done = subprocess.run(
            [interpreter, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": src},
            check=False,
        )
        assert done.returncode == 0, (interpreter, done.stderr)
        assert json.loads(done.stdout) == here, interpreter
