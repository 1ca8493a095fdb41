"""Fixtures for cache tests: real small and read-only filesystems (tmpfs mounts)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def mounted_tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mount a real tmpfs (optionally tiny, optionally read-only) under tmp_path."""
    mounts: list[Path] = []

    def mount(size: str = "1m", read_only: bool = False) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        point = tmp_path / f"mount{len(mounts)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(point)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        return point

    yield mount
    for point in reversed(mounts):
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def counter_file(tmp_path: Path) -> Path:
    """A file that computations append a line to: its line count is the number of runs."""
    path = tmp_path / "runs.txt"
    path.touch()
    return path


def runs(path: Path) -> int:
    return len(path.read_text().splitlines())
