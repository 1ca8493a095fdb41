"""dump/load side by side: forklift vs joblib vs np.save/np.load vs pickle protocol 5.

Data: 1 GB of float64 (random, and compressible), and a dict of many small arrays. The raw
rows carry np.save/np.load (the pace the raw goals are stated against) and pickle; the
compressed rows compare joblib and forklift at the same setting (zlib level 3, lz4).
``quick=True`` shrinks everything to a few MB so the module runs in seconds.
Every runner times only the operation; data creation and file removal are set up outside.
"""

from __future__ import annotations

import functools
import os
import pickle
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import forklift.persist as persist
from benchmarks.harness import Scenario


@functools.cache
def _workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="forklift-bench-persist-"))
    import atexit

    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def _data(kind: str, nbytes: int) -> Any:
    import numpy as np

    rng = np.random.default_rng(42)
    count = nbytes // 8
    if kind == "random":
        return rng.random(count)
    if kind == "compressible":
        # a smooth signal with 3 significant decimals: typical of measured data
        return np.round(np.sin(np.arange(count) / 5000.0) * 100.0, 3)
    if kind == "small-arrays":
        sizes = rng.integers(10, 2000, size=max(1, nbytes // 8000))
        return {f"key{i}": rng.random(int(n)) for i, n in enumerate(sizes)}
    raise ValueError(kind)


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _written(path: Path, keep: bool, dump: Callable[[], object]) -> float:
    """Time a dump; unless ``keep``, remove its file at once, untimed. A 1 GB file left
    until the variant's next round is written back to disk while the other variants are
    timed, and they paid for it unevenly: forklift's raw dump, which hashes on one core
    while writing on the other, lost its overlap to the writeback threads (in one run
    ~340 ms against np.save's ~310 ms; with each file removed at once 198 / 205 ms,
    measured here, 9 interleaved rounds). Removing the file drops its dirty pages."""
    seconds = _timed(dump)
    if not keep:
        _remove(path)
    return seconds


def _path(name: str) -> Path:
    return _workdir() / name


def _remove(path: Path) -> None:
    for candidate in path.parent.glob(path.name + "*"):
        candidate.unlink()


# -- writers ---------------------------------------------------------------------------------


def _dump_forklift(value: Any, path: Path, compress: Any = 0, keep: bool = False) -> float:
    _remove(path)
    return _written(path, keep, lambda: persist.dump(value, path, compress=compress))


def _dump_joblib(value: Any, path: Path, compress: Any = 0, keep: bool = False) -> float:
    import joblib

    _remove(path)
    return _written(path, keep, lambda: joblib.dump(value, path, compress=compress))


def _dump_numpy(value: Any, path: Path, keep: bool = False) -> float:
    import numpy as np

    _remove(path)

    def save() -> None:
        with open(path, "wb") as handle:
            np.save(handle, value)

    return _written(path, keep, save)


def _dump_pickle(value: Any, path: Path, keep: bool = False) -> float:
    _remove(path)

    def save() -> None:
        with open(path, "wb") as handle:
            pickle.dump(value, handle, protocol=5)

    return _written(path, keep, save)


# -- readers ---------------------------------------------------------------------------------


def _load_forklift(path: Path, mmap_mode: str | None = None, verify: bool = False) -> float:
    return _timed(lambda: persist.load(path, mmap_mode=mmap_mode, verify=verify))


def _load_joblib(path: Path, mmap_mode: str | None = None) -> float:
    import joblib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _timed(lambda: joblib.load(path, mmap_mode=mmap_mode))


def _load_numpy(path: Path, mmap_mode: str | None = None) -> float:
    import numpy as np

    return _timed(lambda: np.load(path, mmap_mode=mmap_mode))  # type: ignore[arg-type]


def _load_pickle(path: Path) -> float:
    def read() -> None:
        with open(path, "rb") as handle:
            pickle.load(handle)

    return _timed(read)


def _prepared(writer: Callable[..., float], *args: Any) -> Path:
    """Write a file once (outside any timing) and return its path."""
    writer(*args)
    path: Path = args[1]
    return path


@functools.cache
def _file(tool: str, kind: str, nbytes: int, compress: Any = 0) -> Path:
    value = _data(kind, nbytes)
    name = f"{tool}-{kind}-{nbytes}-{compress}"
    path = _path(name)
    if tool == "forklift":
        _dump_forklift(value, path, compress, keep=True)
    elif tool == "joblib":
        _dump_joblib(value, path, compress, keep=True)
    elif tool == "numpy":
        _dump_numpy(value, path, keep=True)
    else:
        _dump_pickle(value, path, keep=True)
    return path


def file_sizes(nbytes: int) -> dict[str, int]:
    """Compressed sizes, for the report (not a timed scenario)."""
    sizes = {}
    for tool, compress in (("forklift", 3), ("joblib", 3), ("forklift", "zstd")):
        for kind in ("random", "compressible"):
            sizes[f"{tool} {compress} {kind}"] = os.path.getsize(
                _file(tool, kind, nbytes, compress)
            )
    return sizes


def scenarios(quick: bool) -> list[Scenario]:
    """The persistence benchmark table (quick: a few MB instead of 1 GB)."""
    big = (8 << 20) if quick else (1 << 30)
    small = (4 << 20) if quick else (100 << 20)
    repeats = 3 if quick else 5
    slow_repeats = 1 if quick else 3
    out = [
        Scenario(
            name=f"dump {big >> 20} MB float64 random, raw",
            runners={
                "forklift": lambda: _dump_forklift(_data("random", big), _path("w-fk")),
                "joblib": lambda: _dump_joblib(_data("random", big), _path("w-jl")),
                "np.save": lambda: _dump_numpy(_data("random", big), _path("w-np")),
                "pickle5": lambda: _dump_pickle(_data("random", big), _path("w-pk")),
            },
            subject="forklift",
            # issue #16: at least np.save's pace (and so at least 1.3x joblib's)
            baseline="np.save",
            target=1.0,
            repeats=repeats,
            note=(
                "goal: forklift's time at most np.save's (joblib's median is in the last "
                "column). Writing 1 GB into the page cache is the floor for all four; "
                "forklift also hashes every byte (xxh3, ~70 ms/GB) and renames a temporary "
                "file: its calling thread and one helper each hash a 1 MiB piece of their own "
                "chunk, then pwrite it at its offset, so one thread's hashing overlaps the "
                "other's copy into the page cache. Each file is removed right after its "
                "timing. Buffers of 32 MiB or more start on a 512 KiB boundary, so the page "
                "cache holds them in large folios (docs/format.md). Same-run ratios, quiet "
                "machine, 2026-12-06: 0.92-1.07 over three runs of this row (1.05-1.16 "
                "before the 512 KiB rule); an interleaved script, 15 rounds back to back: "
                "forklift 192 ms, with 64-byte-aligned sections 217 ms, np.save 554 ms "
                "(179-1609: on this VM its 2 MiB folios sometimes come from memory the host "
                "took back and faults in again), joblib 415 ms"
            ),
        ),
        Scenario(
            name=f"load {big >> 20} MB float64 random, raw",
            runners={
                "forklift": lambda: _load_forklift(_file("forklift", "random", big)),
                "forklift verify=True": lambda: _load_forklift(
                    _file("forklift", "random", big), verify=True
                ),
                "joblib": lambda: _load_joblib(_file("joblib", "random", big)),
                "np.load": lambda: _load_numpy(_file("numpy", "random", big)),
                "pickle5": lambda: _load_pickle(_file("pickle", "random", big)),
            },
            subject="forklift",
            baseline="joblib",
            target=0.75,
            repeats=repeats,
            note="raw-buffer checksums are off by default; the verify=True column shows them",
        ),
        Scenario(
            name=f"load {big >> 20} MB float64, mmap_mode='r'",
            runners={
                "forklift": lambda: _load_forklift(_file("forklift", "random", big), "r"),
                "joblib": lambda: _load_joblib(_file("joblib", "random", big), "r"),
                "np.load": lambda: _load_numpy(_file("numpy", "random", big), "r"),
            },
            subject="forklift",
            baseline="joblib",
            target=None,
            repeats=repeats,
            note="goal: forklift under 5 ms in absolute terms",
        ),
    ]
    for kind in ("random", "compressible"):
        out.append(
            Scenario(
                name=f"dump {big >> 20} MB float64 {kind}, compress=3",
                runners={
                    "forklift": lambda kind=kind: _dump_forklift(
                        _data(kind, big), _path("c-fk"), 3
                    ),
                    "joblib": lambda kind=kind: _dump_joblib(_data(kind, big), _path("c-jl"), 3),
                },
                subject="forklift",
                baseline="joblib",
                target=0.5,
                repeats=slow_repeats,
                warmup=0,
                note="forklift's file is smaller than joblib's (byte shuffle)",
            )
        )
        out.append(
            Scenario(
                name=f"dump {big >> 20} MB float64 {kind}, forklift zstd vs joblib compress=3",
                runners={
                    "forklift": lambda kind=kind: _dump_forklift(
                        _data(kind, big), _path("z-fk"), "zstd"
                    ),
                    "joblib": lambda kind=kind: _dump_joblib(_data(kind, big), _path("z-jl"), 3),
                },
                subject="forklift",
                baseline="joblib",
                target=0.1,
                repeats=slow_repeats,
                warmup=0,
                note=(
                    "forklift's zstd file is smaller than joblib's zlib-3 file; a bare 'zstd' "
                    "is level 2 over byte-shuffled chunks on 2 cores (~12 ms per 4 MB chunk of "
                    "the compressible floats, ~2 ms of the random ones; level 3's matcher "
                    "took ~18 and ~6 ms)"
                ),
            )
        )
        out.append(
            Scenario(
                name=f"dump {big >> 20} MB float64 {kind}, compress='lz4'",
                runners={
                    "forklift": lambda kind=kind: _dump_forklift(
                        _data(kind, big), _path("l-fk"), "lz4"
                    ),
                    "joblib": lambda kind=kind: _dump_joblib(
                        _data(kind, big), _path("l-jl"), "lz4"
                    ),
                },
                subject="forklift",
                baseline="joblib",
                target=1.0,
                repeats=slow_repeats,
                warmup=0,
                note="lz4 is chosen for speed: level 1 (fast mode), chunks not byte-shuffled",
            )
        )
        out.append(
            Scenario(
                name=f"load {big >> 20} MB float64 {kind}, compress='lz4'",
                runners={
                    "forklift": lambda kind=kind: _load_forklift(
                        _file("forklift", kind, big, "lz4")
                    ),
                    "joblib": lambda kind=kind: _load_joblib(_file("joblib", kind, big, "lz4")),
                },
                subject="forklift",
                baseline="joblib",
                target=1.0,
                repeats=slow_repeats,
                warmup=0,
            )
        )
        out.append(
            Scenario(
                name=f"load {big >> 20} MB float64 {kind}, compress=3",
                runners={
                    "forklift": lambda kind=kind: _load_forklift(_file("forklift", kind, big, 3)),
                    "joblib": lambda kind=kind: _load_joblib(_file("joblib", kind, big, 3)),
                },
                subject="forklift",
                baseline="joblib",
                target=None,
                repeats=slow_repeats,
                warmup=0,
            )
        )
    out += [
        Scenario(
            name=f"dump dict of small arrays ({small >> 20} MB)",
            runners={
                "forklift": lambda: _dump_forklift(_data("small-arrays", small), _path("s-fk")),
                "joblib": lambda: _dump_joblib(_data("small-arrays", small), _path("s-jl")),
                "pickle5": lambda: _dump_pickle(_data("small-arrays", small), _path("s-pk")),
            },
            subject="forklift",
            baseline="joblib",
            target=None,
            repeats=repeats,
        ),
        Scenario(
            name=f"load dict of small arrays ({small >> 20} MB)",
            runners={
                "forklift": lambda: _load_forklift(_file("forklift", "small-arrays", small)),
                "joblib": lambda: _load_joblib(_file("joblib", "small-arrays", small)),
                "pickle5": lambda: _load_pickle(_file("pickle", "small-arrays", small)),
            },
            subject="forklift",
            baseline="joblib",
            target=None,
            repeats=repeats,
        ),
    ]
    return out
