"""The local store's entry files: one file per plain result, a side file for arrays, old
entry folders still served, damage detected, and a fresh process's hit without numpy."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from forklift import Memory, dump
from forklift.cache.memoized import MemorizedFunction
from forklift.cache.stores.local import LocalStore
from forklift.errors import CacheWarning


def shard_files(root: Path) -> list[str]:
    """Names of everything inside the entries' shard folders (below the version folders)."""
    return sorted(
        path.name
        for version in root.rglob("code-*")
        for shard in version.iterdir()
        for path in shard.iterdir()
    )


def store_of(cached: MemorizedFunction) -> LocalStore:
    assert isinstance(cached.store, LocalStore)
    return cached.store


def test_a_miss_writes_one_entry_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    cached = Memory(tmp_path, verbose=0).cache(lambda x: {"x": x})
    cached(1)
    [name] = shard_files(tmp_path)
    assert name.endswith(".entry")  # no lock file, no folder, no claim left behind


def test_a_failed_computation_leaves_no_claim(tmp_path: Path) -> None:
    def fail(x: int) -> int:
        raise RuntimeError(x)

    cached = Memory(tmp_path, verbose=0).cache(fail)
    with pytest.raises(RuntimeError):
        cached(1)
    assert shard_files(tmp_path) == []


def test_results_holding_arrays_are_kept_in_a_side_file_and_mapped(tmp_path: Path) -> None:
    calls: list[int] = []

    def make(n: int) -> dict[str, object]:
        calls.append(n)
        return {"values": np.arange(n, dtype=np.float64)}

    Memory(tmp_path, verbose=0).cache(make)(50_000)
    names = shard_files(tmp_path)
    assert [name.rsplit(".", 1)[1] for name in names] == ["entry", "fkl"]
    again = Memory(tmp_path, verbose=0, mmap_mode="r").cache(make)(50_000)
    assert isinstance(again["values"], np.memmap)
    assert np.array_equal(again["values"], np.arange(50_000, dtype=np.float64))
    assert calls == [50_000]


def test_a_damaged_plain_entry_is_detected_and_recomputed(tmp_path: Path) -> None:
    calls: list[int] = []

    def make(n: int) -> list[int]:
        calls.append(n)
        return list(range(n))

    Memory(tmp_path, verbose=0).cache(make)(50)
    [entry] = tmp_path.rglob("*.entry")
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0x01  # one bit of one small int in the pickle: it would still unpickle
    entry.write_bytes(bytes(data))
    fresh = Memory(tmp_path, verbose=0).cache(make)
    with pytest.warns(CacheWarning, match="checksum"):
        assert fresh(50) == list(range(50))
    assert calls == [50, 50]


def test_entries_of_the_old_layout_are_hits_listed_and_cleared(tmp_path: Path) -> None:
    calls: list[int] = []

    def make(n: int) -> list[int]:
        calls.append(n)
        return [n]

    cached = Memory(tmp_path, verbose=0).cache(make)
    cached(7)
    store = store_of(cached)
    [item] = store.get_items()
    # Rewrite the entry as forklift wrote it before entry files: a folder of two files.
    store.entry_path(item.call_id).unlink()
    key = item.call_id.key
    folder = store.version_dir(item.call_id.function, item.call_id.version) / key[:2] / key
    folder.mkdir(parents=True)
    dump([7], folder / "output.fkl")
    (folder / "meta.json").write_text(json.dumps({"duration": 1.0, "time": 0.0}))

    fresh = Memory(tmp_path, verbose=0).cache(make)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fresh(7) == [7]
    assert calls == [7]
    assert fresh.check_call_in_cache(7)
    assert store.get_metadata(item.call_id) == {"duration": 1.0, "time": 0.0}
    [old] = store.get_items()
    assert old.call_id == item.call_id and old.size > 0
    store.clear_item(item.call_id)
    assert not folder.exists()
    assert not fresh.check_call_in_cache(7)


def test_listing_removes_claims_abandoned_long_ago_but_never_held_ones(tmp_path: Path) -> None:
    cached = Memory(tmp_path, verbose=0).cache(lambda x: x + 1)
    cached(1)
    store = store_of(cached)
    [item] = store.get_items()
    shard = store.entry_path(item.call_id).parent
    abandoned, held = shard / f"{'a' * 32}.claim", shard / f"{'b' * 32}.claim"
    for claim in (abandoned, held):
        claim.write_bytes(b"half an entry")
        os.utime(claim, (1.0, 1.0))  # written long ago
    with open(held, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)  # a computation still running
        assert len(store.get_items()) == 1
        assert held.exists()
    assert not abandoned.exists()
    held.unlink()


FIRST_HIT = textwrap.dedent(
    """
    import sys
    import forklift

    def triple(x):
        return 3 * x

    cached = forklift.Memory(sys.argv[1], verbose=0).cache(triple)
    print(cached(3), "numpy" in sys.modules, "forklift.persist" in sys.modules)
    """
)


def test_a_fresh_process_hit_on_a_plain_result_imports_neither_numpy_nor_persist(
    tmp_path: Path,
) -> None:
    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", FIRST_HIT, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.strip()

    assert run() == "9 False False"  # the miss
    assert list(tmp_path.rglob("*.entry"))
    assert run() == "9 False False"  # the first hit of a new process
