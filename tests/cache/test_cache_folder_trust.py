"""The cache folder as a trust boundary: entries stay inside it, mapped entries are verified,
and a folder others can write to is reported."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forklift import Memory
from forklift.cache.stores.base import CallId
from forklift.cache.stores.local import LocalStore
from forklift.errors import CacheWarning, ConfigurationError


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


def renamed(function: Callable[..., Any], module: str, qualname: str) -> Callable[..., Any]:
    function.__module__ = module
    function.__qualname__ = qualname
    return function


@pytest.mark.parametrize(
    ("module", "qualname"),
    [
        # Names are split at dots, so a part is never ".."; a part that is an absolute path
        # is the way out (joinpath jumps to it). Every path here points into tmp_path, so
        # the test cannot write elsewhere even if the code under test is broken.
        ("tests", "f.{victim}"),
        ("{victim}", "f"),
        ("tests", "f.{victim}/sub"),
        ("..", "...f"),  # empty parts
        ("tests", "code-123abc"),  # would pass for a code version folder of its parent
    ],
)
def test_hostile_names_stay_inside_the_cache_folder(
    tmp_path: Path, module: str, qualname: str
) -> None:
    victim = tmp_path / "victim"
    if "." in str(victim):
        pytest.skip("the test needs a temporary folder without dots in its path")
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    outside_before = files_under(tmp_path)
    location = tmp_path / "cache"
    memory = Memory(location, verbose=0)
    calls: list[int] = []

    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    hostile = renamed(double, module.format(victim=victim), qualname.format(victim=victim))
    cached = memory.cache(hostile)
    assert cached(4) == 8 and cached(4) == 8
    assert calls == [4]  # still cached
    assert files_under(tmp_path) - files_under(location) == outside_before
    cached.clear()
    assert not cached.check_call_in_cache(4)
    memory.clear(warn=False)
    assert (victim / "keep.txt").read_text() == "precious"
    assert files_under(tmp_path) - files_under(location) == outside_before


@pytest.mark.parametrize(
    "function",
    [
        # Each escape would land in tmp_path (the store's root is three levels below it).
        ("..", "..", "..", "victim"),
        ("{tmp}/victim",),
        ("a", "{tmp}/victim"),
        ("",),
        ("a/b",),
        (".locks",),
        ("code-x",),
    ],
)
def test_the_local_store_refuses_paths_that_leave_its_folder(
    tmp_path: Path, function: tuple[str, ...]
) -> None:
    function = tuple(part.format(tmp=tmp_path) for part in function)
    store = LocalStore()
    store.configure(str(tmp_path / "a" / "b"))
    with pytest.raises(ConfigurationError, match="cache folder"):
        store.dump_item(CallId(function, "v1", "ab" * 16), 1, {})
    with pytest.raises(ConfigurationError, match="cache folder"):
        store.clear_path(function)
    climbing = CallId(("f",), "v1", "../../../../../../victim")
    with pytest.raises(ConfigurationError, match="cache folder"):
        store.dump_item(climbing, 1, {})
    with pytest.raises(ConfigurationError, match="cache folder"):
        store.clear_item(climbing)
    with pytest.raises(ConfigurationError, match="cache folder"):
        store.lock_item(climbing, 1.0)
    assert not (tmp_path / "victim").exists()


def make_array(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64)


@pytest.mark.parametrize("mmap_mode", ["r", "c"])
def test_a_damaged_mapped_entry_is_detected_and_recomputed(tmp_path: Path, mmap_mode: str) -> None:
    calls: list[int] = []

    def make(n: int) -> np.ndarray:
        calls.append(n)
        return make_array(n)

    cached = Memory(tmp_path, verbose=0, mmap_mode=mmap_mode).cache(make)
    cached(100_000)  # 800 kB: stored as a raw buffer, loaded as a memory map
    [output] = tmp_path.rglob("*.fkl")
    data = bytearray(output.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the array's bytes
    output.write_bytes(bytes(data))
    fresh = Memory(tmp_path, verbose=0, mmap_mode=mmap_mode).cache(make)
    with pytest.warns(CacheWarning, match="cannot read cache entry"):
        again = fresh(100_000)
    assert np.array_equal(again, make_array(100_000))
    assert calls == [100_000, 100_000]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mapped = fresh(100_000)
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, make_array(100_000))
    assert calls == [100_000, 100_000]


@pytest.mark.parametrize("which", ["location", "root"])
def test_a_cache_folder_others_can_write_to_is_reported(tmp_path: Path, which: str) -> None:
    location = tmp_path / "shared"
    (location / "forklift").mkdir(parents=True)
    target = location if which == "location" else location / "forklift"
    target.chmod(0o777)  # writable by everyone, no sticky bit
    with pytest.warns(CacheWarning, match=r"writable by other users.*unpickled"):
        Memory(location, verbose=0)


def test_a_private_or_sticky_cache_folder_is_not_reported(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o777 | stat.S_ISVTX)  # like /tmp: others cannot replace what we made
    (sticky / "forklift").mkdir(mode=0o755)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Memory(private, verbose=0).cache(abs)(-1)
        Memory(sticky, verbose=0).cache(abs)(-1)
    assert os.stat(private / "forklift").st_mode & 0o022 == 0
