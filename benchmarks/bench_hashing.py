"""forklift.hash against joblib.hash: large and strided arrays, small objects, call arguments.

Issue goal: at least 8 GB/s on a large float64 array (joblib's md5 path: ~0.6 GB/s here, so a
time ratio of at most ~0.075). ``python -m benchmarks.bench_hashing [--quick]`` also prints
the throughput of each runner.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Any

import forklift.hashing as forklift_hashing
from benchmarks.harness import Scenario


def _timed(function: Callable[[Any], object], data: Callable[[], Any]) -> Callable[[], float]:
    def run() -> float:
        value = data()  # built (and cached) outside the timed part
        start = time.perf_counter()
        function(value)
        return time.perf_counter() - start

    return run


@functools.cache
def _array(nbytes: int) -> Any:
    import numpy as np

    return np.random.default_rng(0).random(nbytes // 8)


@functools.cache
def _matrix(nbytes: int) -> Any:
    # Twice the size, viewed every other column: a non-contiguous ``nbytes`` view.
    import numpy as np

    columns = 1024
    return np.random.default_rng(1).random((2 * nbytes // 8 // columns, columns))[:, ::2]


@functools.cache
def _small_objects(entries: int) -> dict[str, Any]:
    return {
        f"key{i}": {
            "id": i,
            "score": i / 7,
            "tags": ["alpha", str(i), None, i % 2 == 0],
            "pair": (i, b"payload!"),
            "flags": {"x", "y", str(i % 5)},
        }
        for i in range(entries)
    }


# A typical cached call's arguments: what Memory hashes on every call, hit or miss.
_CALL_ARGS = ((3, "train.csv", 0.25, None), {"alpha": 0.1, "n_iter": 100, "columns": ["a", "b"]})


def _many_calls(function: Callable[[Any], object], calls: int) -> Callable[[], float]:
    def run() -> float:
        args = _CALL_ARGS
        start = time.perf_counter()
        for _ in range(calls):
            function(args)
        return (time.perf_counter() - start) / calls

    return run


def _joblib_hash(value: Any) -> str:
    import joblib

    digest: str = joblib.hash(value)
    return digest


def _xxh3_raw(value: Any) -> str:
    import xxhash

    return xxhash.xxh3_128(memoryview(value).cast("B")).hexdigest()


# Bytes hashed per scenario name, for the GB/s column of ``_report``.
_PAYLOAD_BYTES: dict[str, int] = {}


def scenarios(quick: bool) -> list[Scenario]:
    """The hashing rows of ``make bench``; ``quick`` shrinks every input."""
    array_bytes = 50 * 2**20 if quick else 2**30
    view_bytes = 16 * 2**20 if quick else 256 * 2**20
    entries = 2_000 if quick else 20_000
    calls = 500 if quick else 5_000
    repeats = 3 if quick else 5

    def array() -> Any:
        return _array(array_bytes)

    def view() -> Any:
        return _matrix(view_bytes)

    def objects() -> Any:
        return _small_objects(entries)

    array_name = f"hash {array_bytes // 2**20} MB float64 array"
    view_name = f"hash {view_bytes // 2**20} MB strided float64 view"
    _PAYLOAD_BYTES.update({array_name: array_bytes, view_name: view_bytes})
    return [
        Scenario(
            name=array_name,
            runners={
                "forklift": _timed(forklift_hashing.hash, array),
                "joblib": _timed(_joblib_hash, array),
                "xxh3_128 raw buffer": _timed(_xxh3_raw, array),
            },
            subject="forklift",
            baseline="joblib",
            target=0.075,  # 8 GB/s against joblib's ~0.6 GB/s
            repeats=repeats,
            note=f"GB/s = {array_bytes / 1e9:.3f} / median s; goal >= 8 GB/s",
        ),
        Scenario(
            name=view_name,
            runners={
                "forklift": _timed(forklift_hashing.hash, view),
                "joblib": _timed(_joblib_hash, view),
            },
            subject="forklift",
            baseline="joblib",
            target=0.25,
            repeats=repeats,
            note=f"GB/s = {view_bytes / 1e9:.3f} / median s; copied 1 MiB at a time",
        ),
        Scenario(
            name=f"hash dict of {entries} records of small objects",
            runners={
                "forklift": _timed(forklift_hashing.hash, objects),
                "joblib": _timed(_joblib_hash, objects),
            },
            subject="forklift",
            baseline="joblib",
            target=0.5,
            repeats=repeats,
        ),
        Scenario(
            name="hash small call arguments (per call)",
            runners={
                "forklift": _many_calls(forklift_hashing.hash, calls),
                "joblib": _many_calls(_joblib_hash, calls),
            },
            subject="forklift",
            baseline="joblib",
            target=0.5,
            repeats=repeats,
        ),
    ]


def _report(quick: bool) -> None:
    """Median time and throughput of every runner (the harness prints times and ratios)."""
    for scenario in scenarios(quick):
        nbytes = _PAYLOAD_BYTES.get(scenario.name)
        line = f"{scenario.name}:"
        medians = {}
        for label, runner in scenario.runners.items():
            times = sorted(runner() for _ in range(scenario.repeats))
            medians[label] = seconds = times[len(times) // 2]
            line += f"\n  {label:22s} {seconds * 1e6:12.1f} us"
            if nbytes:
                line += f"  {nbytes / seconds / 1e9:6.2f} GB/s"
        ratio = medians[scenario.subject] / medians[scenario.baseline]
        print(f"{line}\n  ratio {ratio:.3f} (target {scenario.target})")


if __name__ == "__main__":
    _report("--quick" in sys.argv)
