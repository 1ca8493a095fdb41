"""A damaged cache never costs the user a result: corrupted entries, read-only and full disks."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from forklift import Memory
from forklift.errors import CacheWarning


def entry_files(root: Path, name: str = "*.fkl") -> list[Path]:
    return sorted(root.rglob(name))


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_entry_is_reported_deleted_and_recomputed(tmp_path: Path, damage: str) -> None:
    memory = Memory(tmp_path, verbose=0)
    calls: list[int] = []

    @memory.cache
    def make(n: int) -> dict[str, object]:
        calls.append(n)
        return {"values": np.arange(n, dtype=np.float64), "label": "x" * 100}

    expected = make(10_000)
    [output] = entry_files(tmp_path)
    data = bytearray(output.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"not a forklift file at all" * 10)
    output.write_bytes(bytes(data))
    with pytest.warns(CacheWarning, match="cannot read cache entry"):
        again = make(10_000)
    assert np.array_equal(again["values"], expected["values"])  # type: ignore[arg-type]
    assert calls == [10_000, 10_000]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(10_000)  # repaired: a clean hit now
    assert calls == [10_000, 10_000]


def test_read_only_cache_still_returns_results(mounted_tmpfs: Callable[..., Path]) -> None:
    folder = mounted_tmpfs(read_only=True)
    memory = Memory(folder / "cache", verbose=0)
    cached = memory.cache(lambda x: x * 2)
    with pytest.warns(CacheWarning, match="returning it uncached"):
        assert cached(21) == 42


def test_hits_still_work_on_a_cache_made_read_only(
    tmp_path: Path, mounted_tmpfs: Callable[..., Path]
) -> None:
    import subprocess

    folder = mounted_tmpfs(size="4m")
    memory = Memory(folder, verbose=0)
    calls: list[int] = []

    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    assert memory.cache(double)(4) == 8
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Memory(folder, verbose=0).cache(double)(4) == 8
    assert calls == [4]


def test_full_disk_warns_and_returns_the_result(mounted_tmpfs: Callable[..., Path]) -> None:
    folder = mounted_tmpfs(size="256k")
    memory = Memory(folder, verbose=0)
    big = memory.cache(lambda n: np.ones(n))
    with pytest.warns(CacheWarning, match="No space left"):
        result = big(1_000_000)  # 8 MB into a 256 kB filesystem
    assert result.shape == (1_000_000,)
    leftovers = [p for p in folder.rglob("*") if p.is_file() and p.suffix == ".fkl"]
    assert leftovers == []  # the half-written entry was cleaned up
    assert memory.cache(lambda n: n + 1)(1) == 2  # small entries still fit and work


def test_unpicklable_result_warns_and_is_returned(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0)
    make_lock = memory.cache(lambda: __import__("threading").Lock())
    with pytest.warns(CacheWarning, match="could not store"):
        lock = make_lock()
    assert lock.acquire(blocking=False)
    assert not list(tmp_path.rglob(".tmp-*"))
