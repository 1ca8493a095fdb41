"""Seeded fuzzing of load and inspect_file: ``python -m tests.persist.fuzzing --count N``.

Small files of every codec (forklift's own: uncompressed, and the codec streams its writer
frames; the same content compressed by other tools; joblib's when joblib is installed) are
mutated: bit flips, random bytes, truncations, insertions, deletions. For 30% of the
forklift mutants only bytes inside the pickle stream change; half of the other codec-stream
mutants damage the content and compress it again intact, so the damage passes the codec's
own checksum. For half of the mutants whose forklift content was damaged, every forklift
checksum is then recomputed, so the damage passes the integrity checks and reaches the
decoder. Each mutant is loaded and inspected; the outcome must be

* a forklift error naming the file, or
* for damage that was not re-checksummed: a value equal to the original (``verify=True``),
* for re-checksummed or joblib mutants (valid files by another name): any value.

Anything else (another exception, a crash, a hang) is a failure. Plain loads (which trust
the file, as pickle does) run only on forklift mutants whose checksums were not recomputed,
where the checksums must catch the damage: a re-checksummed file, or a joblib file (no
checksums), is a valid file with a crafted pickle, which plain loads trust as pickle does
(numpy's own unpickling can crash on one; safe loads must not). The report is one JSON
line; run it in a child process so that a crash is a failure, not the end of the session.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import json
import lzma
import random
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tests.persist.crafting import CODECS, refresh_checksums

from forklift import SAFE_GLOBALS, dump, inspect_file, load
from forklift.errors import ForkliftError
from forklift.persist import layout
from forklift.persist.stream_output import StreamOutput


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


@dataclass(frozen=True)
class Seed:
    """One file to mutate. ``content``/``wrap``: for a codec stream, its decompressed
    content and how to compress a (mutated) content again the same way."""

    label: str
    data: bytes
    checked: bool  # has forklift's checksums
    content: bytes | None = None
    wrap: Callable[[bytes], bytes] | None = None


def _writer_wrap(codec: str) -> Callable[[bytes], bytes]:
    """Frame content as forklift's writer does (members with recorded sizes)."""

    def wrap(content: bytes) -> bytes:
        buffer = io.BytesIO()
        out = StreamOutput(buffer, codec, 1)
        out.write(content)
        out.close()
        return buffer.getvalue()

    return wrap


def _foreign_wraps() -> dict[str, Callable[[bytes], bytes]]:
    """Compress content as other tools do (one stream, no recorded sizes)."""
    import lz4.frame
    import zstandard

    return {
        "gzip": gzip.compress,
        "zlib": zlib.compress,
        "bz2": bz2.compress,
        "xz": lambda data: lzma.compress(data, lzma.FORMAT_XZ),
        "lzma": lambda data: lzma.compress(data, lzma.FORMAT_ALONE),
        "lz4": lambda data: bytes(lz4.frame.compress(data)),
        "zstd": zstandard.ZstdCompressor().compress,
    }


def base_files() -> list[Seed]:
    """Seeds for every codec: forklift's own files (uncompressed, and codec streams from its
    writer), the same content compressed by other tools, and joblib's files."""
    value = _value()
    files = []
    content = b""
    for codec in (0, *CODECS):
        buffer = io.BytesIO()
        dump(value, buffer, compress=codec)
        if not codec:
            content = buffer.getvalue()
            files.append(Seed("forklift-raw", content, True))
        else:
            files.append(
                Seed(f"forklift-{codec}", buffer.getvalue(), True, content, _writer_wrap(codec))
            )
    for codec, wrap in _foreign_wraps().items():
        files.append(Seed(f"foreign-{codec}", wrap(content), True, content, wrap))
    try:
        import joblib
    except ImportError:
        return files
    for codec in (0, "zlib", "gzip", "bz2", "lzma", "xz", "lz4"):
        buffer = io.BytesIO()
        joblib.dump(value, buffer, compress=codec)
        files.append(Seed(f"joblib-{codec or 'raw'}", buffer.getvalue(), False))
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
        base = files[index % len(files)]
        content = base.data if base.content is None else base.content
        span = pickle_span(content) if base.checked else None
        aimed = span is not None and rng.random() < 0.3  # at the decoder itself
        if base.wrap is not None and not aimed and rng.random() < 0.5:
            aimed = True  # anywhere in the content of a codec stream, compressed intact
            damaged = mutate(content, rng)
        elif aimed and span is not None:
            damaged = mutate_inside(content, span, rng)
        else:
            damaged = mutate(base.data, rng)
        # forklift's checksums recomputed: the damage reaches the decoder
        refreshed = base.checked and (aimed or base.content is None) and rng.random() < 0.5
        if refreshed:
            damaged = refresh_checksums(damaged)
        mutant = base.wrap(damaged) if aimed and base.wrap is not None else damaged
        strict = base.checked and not refreshed
        label = base.label
        results = [_attempt(mutant, expected, SAFE_GLOBALS, strict), _inspect(mutant)]
        if strict:  # re-checksummed, a file is a valid one with a crafted pickle: trusted
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
