"""What a miss asks of the file system, traced with strace in a real process: a look for the
entry, the key's claim created, a second look under it, the entry written and renamed into
place - and nothing else (no lookups in the old layout of a folder that has none, no stat of
the entry just written). Both looks of a miss that follows misses are ``access()`` calls,
which fail without an exception to raise and catch in Python."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MISSES = 10
SCRIPT = textwrap.dedent(
    """
    import os
    import sys

    import forklift

    def add(x):
        return x + 1

    cached = forklift.Memory(sys.argv[1], verbose=0).cache(add)
    for x in range(-40, 0):  # the first misses make the shard folders
        cached(x)

    def mark(name):
        try:
            os.stat("/" + name)
        except OSError:
            pass

    mark("forklift-misses-start")
    for x in range(int(sys.argv[2])):
        cached(x)
    mark("forklift-misses-end")
    """
)


def traced_misses(folder: Path, trace: Path) -> list[str]:
    """The system calls (strace lines) the misses made, between the script's two marks."""
    done = subprocess.run(
        [
            "strace",
            "-qq",
            "-e",
            "trace=%file,%desc",
            "-o",
            str(trace),
            sys.executable,
            "-c",
            SCRIPT,
            str(folder),
            str(MISSES),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()[-300:]}")
    lines = trace.read_text().splitlines()
    [start] = [i for i, line in enumerate(lines) if "forklift-misses-start" in line]
    [end] = [i for i, line in enumerate(lines) if "forklift-misses-end" in line]
    return lines[start + 1 : end]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_a_miss_makes_only_the_file_system_calls_it_needs(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    calls = traced_misses(folder, tmp_path / "trace.txt")
    names = [re.match(r"(\w+)\(", line).group(1) for line in calls]  # type: ignore[union-attr]
    by_path = [line for line in calls if str(folder) in line]
    # Per miss: look for the entry (missing), create the claim, look again (missing), rename.
    assert len(by_path) == 4 * MISSES, "\n".join(by_path)
    for first, create, second, rename in zip(*[iter(by_path)] * 4, strict=True):
        for look in (first, second):
            assert not look.startswith("openat("), look  # access(): misses came before
            assert ".entry" in look and look.endswith("ENOENT (No such file or directory)")
        assert create.startswith("openat(") and "O_EXCL" in create
        assert rename.startswith("rename")
    # And on the claim's descriptor: lock, write, set the times, close.
    assert names.count("flock") == MISSES
    assert names.count("close") == MISSES
    assert len(calls) == 8 * MISSES, "\n".join(calls)
