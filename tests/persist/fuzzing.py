"""Seeded fuzzing of load and inspect_file: ``python -m tests.persist.fuzzing --count N``.

Small files of every codec (forklift's, and joblib's when joblib is installed) are mutated:
bit flips, random bytes, truncations, insertions, deletions (for 30% of the uncompressed
forklift mutants, flips and bytes inside the pickle stream only); for half of the forklift
mutants every checksum is then recomputed, so the damage passes the integrity checks and
reaches the decoder. Each mutant is loaded and inspected; the outcome must be

* a forklift error naming the file, or
* for damage that was not re-checksummed: a value equal to the original (``verify=True``),
* for re-checksummed or joblib mutants (valid files by another name): any value.

Anything else (another exception, a crash, a hang) is a failure. Plain loads (which trust
the file, as pickle does) run on forklift mutants only: a joblib file has no checksums, so
a damaged one is as trusted as any pickle. The report is one JSON line; run it in a child
process so that a crash is a failure, not the end of the test session.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from collections import Counter
from typing import Any

import numpy as np
from tests.persist.crafting import CODECS, refresh_checksums

from forklift import SAFE_GLOBALS, dump, inspect_file, load
from forklift.errors import ForkliftError
from forklift.persist import layout


def _value() -> dict[str, Any]:
    return {
        "big": np.arange(6_000, dtype="<i4"),  # out of band (> 16 KiB)
        # incompressible: stored raw even in compressed files
        "noise": np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8),
        "small": np.linspace(0, 1, 7),
        "mixed": [1, "two", 3.5, b"four", None, (True, False)],
        "nested": {"k": {"x": [1, 2, {3}]}},
        "objects": np.array([1, "a"], dtype=object),
    }


def _same(loaded: Any, expected: Any) -> bool:
    if type(loaded) is not type(expected):
        return False
    if isinstance(expected, np.ndarray):
        return bool(
            loaded.dtype == expected.dtype
            and loaded.shape == expected.shape
            and loaded.tolist() == expected.tolist()
        )
    if isinstance(expected, dict):
        return loaded.keys() == expected.keys() and all(
            _same(loaded[key], expected[key]) for key in expected
        )
    if isinstance(expected, list | tuple):
        return len(loaded) == len(expected) and all(
            _same(a, b) for a, b in zip(loaded, expected, strict=True)
        )
    return bool(loaded == expected)


def base_files() -> list[tuple[str, bytes, bool]]:
    """(label, bytes, has checksums) for every codec."""
    value = _value()
    files = []
    for codec in (0, *CODECS):
        buffer = io.BytesIO()
        dump(value, buffer, compress=codec)
        files.append((f"forklift-{codec or 'raw'}", buffer.getvalue(), True))
    try:
        import joblib
    except ImportError:
        return files
    for codec in (0, "zlib", "gzip", "bz2", "lzma", "xz", "lz4"):
        buffer = io.BytesIO()
        joblib.dump(value, buffer, compress=codec)
        files.append((f"joblib-{codec or 'raw'}", buffer.getvalue(), False))
    return files


def mutate(data: bytes, rng: random.Random) -> bytes:
    damaged = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.randrange(5)
        position = rng.randrange(len(damaged) or 1)
        if kind == 0 and damaged:
            damaged[position] ^= 1 << rng.randrange(8)
        elif kind == 1 and damaged:
            damaged[position] = rng.randrange(256)
        elif kind == 2:
            del damaged[position:]
        elif kind == 3:
            damaged[position:position] = bytes([rng.randrange(256)])
        elif damaged:
            del damaged[position]
    return bytes(damaged)


def pickle_span(data: bytes) -> tuple[int, int] | None:
    """Where the (first chunk of the) pickle section of a forklift file lies (None for a
    codec stream: its content is compressed)."""
    if not data.startswith(layout.MAGIC):
        return None
    offset, length, _, _ = layout.TRAILER.unpack(data[-layout.TRAILER.size :])
    chunk = json.loads(data[offset : offset + length])["pickle"]["chunks"][0]
    return (chunk[0], chunk[0] + chunk[1]) if not chunk[3] else None


def mutate_inside(data: bytes, span: tuple[int, int], rng: random.Random) -> bytes:
    """Flip or replace bytes of the pickle stream only (its length stays the same)."""
    damaged = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        position = rng.randrange(*span)
        if rng.random() < 0.5:
            damaged[position] ^= 1 << rng.randrange(8)
        else:
            damaged[position] = rng.randrange(256)
    return bytes(damaged)


class _Named(io.BytesIO):
    name = "mutant.fkl"


def _attempt(data: bytes, expected: Any, allowed: Any, strict: bool) -> str:
    start = time.perf_counter()
    try:
        loaded = load(_Named(data), allowed_globals=allowed, verify=True)
    except ForkliftError as error:
        outcome = "error" if "mutant.fkl" in str(error) else "error without the name"
    except BaseException as error:
        outcome = f"not a forklift error: {type(error).__name__}: {error}"[:300]
    else:
        if _same(loaded, expected):
            outcome = "same"
        else:
            outcome = "silent wrong result" if strict else "other valid value"
    if time.perf_counter() - start > 10:
        outcome = "slow (over 10 s)"
    return outcome


def _inspect(data: bytes) -> str:
    try:
        inspect_file(_Named(data))
    except ForkliftError:
        return "error"
    except BaseException as error:
        return f"inspect: not a forklift error: {type(error).__name__}: {error}"[:300]
    return "report"


def run(seed: int, count: int) -> dict[str, Any]:
    rng = random.Random(seed)
    expected = _value()
    files = base_files()
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    good = ("error", "same", "other valid value", "report")
    started = time.perf_counter()
    for index in range(count):
        label, data, checked = files[index % len(files)]
        span = pickle_span(data) if checked else None
        if span is not None and rng.random() < 0.3:
            mutant = mutate_inside(data, span, rng)  # aimed at the decoder itself
        else:
            mutant = mutate(data, rng)
        # a codec stream's own checksum is not forklift's: only containers are refreshed
        refreshed = checked and data.startswith(layout.MAGIC) and rng.random() < 0.5
        if refreshed:
            mutant = refresh_checksums(mutant)
        strict = checked and not refreshed
        results = [_attempt(mutant, expected, SAFE_GLOBALS, strict), _inspect(mutant)]
        if checked:
            results.append(_attempt(mutant, expected, None, strict))
        for outcome in results:
            outcomes[outcome] += 1
            if outcome not in good and len(failures) < 20:
                failures.append(f"{label} #{index} seed {seed}: {outcome}")
    return {
        "mutants": count,
        "seconds": round(time.perf_counter() - started, 1),
        "outcomes": dict(outcomes),
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=2_000)
    arguments = parser.parse_args(argv)
    report = run(arguments.seed, arguments.count)
    print(json.dumps(report))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
