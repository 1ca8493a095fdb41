"""Large arrays written as several stripe files by several threads and mapped back as one
array, for real: contents, the three worker modes, passing on by reference, no leftovers."""

from __future__ import annotations

import gc
import os
import pickle
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forklift._support.cpus import cpu_count
from forklift.pool.shared_arrays import ArrayFiles
from forklift.pool.stripes import (
    MAX_STRIPES,
    STRIPE_ALIGN,
    STRIPE_MIN_BYTES,
    stripe_sizes,
    write_stripes,
)

MB = 1 << 20
CPUS = cpu_count()

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="stripes are mapped back with MAP_FIXED"),
    pytest.mark.skipif(CPUS < 2, reason="one writer thread: arrays are not striped"),
]


def odd_sized_array() -> np.ndarray:
    """Random float32s over two stripes' worth of bytes, not a whole number of pages."""
    rows = 2 * STRIPE_MIN_BYTES // 4 // 1237 + 3
    return np.random.default_rng(7).random((rows, 1237), dtype=np.float32)


def reopen(reference: Any) -> Any:
    """What a worker gets: the reference pickled and unpickled."""
    return pickle.loads(pickle.dumps(reference))


def mapped_paths() -> str:
    with open("/proc/self/maps") as maps:
        return maps.read()


def test_stripe_sizes_cover_the_file_in_aligned_parts() -> None:
    assert stripe_sizes(STRIPE_MIN_BYTES) == [STRIPE_MIN_BYTES]  # too small to split
    for size in (2 * STRIPE_MIN_BYTES, 400 * MB + 16, 3 * STRIPE_MIN_BYTES - 1, 10 << 30):
        sizes = stripe_sizes(size)
        assert sum(sizes) == size
        assert 2 <= len(sizes) <= min(MAX_STRIPES, CPUS)
        assert all(part % STRIPE_ALIGN == 0 for part in sizes[:-1])
        assert all(part > 0 for part in sizes)


@pytest.mark.parametrize("mmap_mode", ["r", "c", "r+"])
def test_a_large_array_is_written_as_stripes_and_opened_as_one_memmap(mmap_mode: str) -> None:
    data = odd_sized_array()
    expected = data.copy()
    files = ArrayFiles(threshold=MB, mmap_mode=mmap_mode)
    reference = files.reference(data)
    assert reference is not None and len(reference.paths) >= 2
    assert [os.path.getsize(path) for path in reference.paths[:-1]] == [reference.stripe_bytes] * (
        len(reference.paths) - 1
    )
    first, second = reopen(reference), reopen(reference)
    assert isinstance(first, np.memmap) and first.filename == reference.paths[0]
    assert first.shape == data.shape and first.dtype == data.dtype
    assert np.array_equal(first, expected)
    assert bool(first.flags.writeable) == (mmap_mode != "r")
    if mmap_mode != "r":
        first[-1, -1] = first[0, 0] = -5.0  # both ends: the first and the last stripe
        seen_by_another = (float(second[0, 0]), float(second[-1, -1]))
        if mmap_mode == "r+":  # writes reach the files, so every map of them sees them
            assert seen_by_another == (-5.0, -5.0)
        else:  # copy-on-write: private to the map that wrote
            assert seen_by_another == (float(expected[0, 0]), float(expected[-1, -1]))
    assert np.array_equal(data, expected)  # the caller's array never changes
    del first, second
    files.close()
    assert not any(os.path.exists(path) for path in reference.paths)


def test_a_striped_memmap_and_its_views_pass_on_by_reference() -> None:
    data = odd_sized_array()
    files = ArrayFiles(threshold=MB)
    reference = files.reference(data)
    assert reference is not None
    opened = reopen(reference)
    passing_on = ArrayFiles(threshold=MB)  # as a worker's own nested call would
    for view in (opened, opened[100:, 3:], opened[::-7, ::3], opened.T):
        again = passing_on.reference(view)
        assert again is not None and again.paths == reference.paths
        assert np.array_equal(reopen(again), view)
    assert passing_on.n_written == 0
    passing_on.close()
    del opened
    files.close()


def test_dropping_the_array_unmaps_every_stripe() -> None:
    files = ArrayFiles(threshold=MB, adopt=False)
    reference = files.reference(odd_sized_array())
    assert reference is not None
    opened = reopen(reference)
    view = opened[5]
    assert all(path in mapped_paths() for path in reference.paths)
    del opened
    assert all(path in mapped_paths() for path in reference.paths)  # the view holds them
    del view
    gc.collect()
    assert not any(path in mapped_paths() for path in reference.paths)
    files.close()


def test_the_callers_pages_are_adopted_stripe_by_stripe() -> None:
    data = odd_sized_array()
    expected_sum = float(data.sum(dtype=np.float64))
    files = ArrayFiles(threshold=MB)
    reference = files.reference(data)
    assert reference is not None and len(reference.paths) >= 2 and files.n_adopted == 1
    maps = mapped_paths()
    assert all(path in maps for path in reference.paths)  # the caller's pages are the files'
    assert float(data.sum(dtype=np.float64)) == expected_sum
    data[-1, -1] = 3.0  # still the caller's own to write, privately
    assert float(reopen(reference)[-1, -1]) != 3.0
    files.close()


class Interrupted(Exception):
    pass


def test_an_interrupted_write_returns_only_once_every_writer_is_done(tmp_path: Path) -> None:
    raw = memoryview(np.ones(256 * MB, dtype=np.uint8))
    sizes = [2 * MB, len(raw) - 2 * MB]  # this thread's stripe is done at once; it then waits
    fds = [os.open(tmp_path / f"stripe-{i}", os.O_RDWR | os.O_CREAT, 0o600) for i in range(2)]

    def interrupt(*_: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, interrupt)
    # To this thread itself (a signal to the process may land in the writer instead).
    timer = threading.Timer(0.02, signal.pthread_kill, (threading.get_ident(), signal.SIGUSR1))
    try:
        timer.start()
        with pytest.raises(Interrupted):
            write_stripes(raw, 0, fds, sizes, None)
        # Only now may the caller close the descriptors: no writer may still use them.
        assert os.path.getsize(tmp_path / "stripe-1") == sizes[1]  # the writer finished
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGUSR1, previous)
        for fd in fds:
            os.close(fd)
