"""Large uncompressed dumps written by offset from two threads (persist/positional.py): the
same bytes as the sequential writer, in every kind of regular file, errors surfaced."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from forklift.persist import dump, layout, load, positional

np = pytest.importorskip("numpy")

pytestmark = pytest.mark.skipif(not hasattr(os, "pwrite"), reason="needs os.pwrite")

SRC = str(Path(__file__).parents[2] / "src")


def _value() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    # sizes that are not multiples of 64 leave alignment gaps between the sections
    return {
        "big": rng.random((positional.MIN_LENGTH >> 3) + 3),
        "odd": rng.integers(0, 255, size=1_000_003, dtype="u1"),
        "text": "x" * 100_000,
    }


def _sequential_bytes(value: Any, folder: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    path = folder / "sequential.fkl"
    with monkeypatch.context() as patch:
        patch.setattr(positional, "MIN_LENGTH", 1 << 62)
        dump(value, path)
    return path.read_bytes()


@pytest.fixture
def pwrite_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads that called os.pwrite (the real one) during the test."""
    names: list[str] = []
    real = os.pwrite

    def recording(descriptor: int, data: Any, offset: int) -> int:
        names.append(threading.current_thread().name)
        return real(descriptor, data, offset)

    monkeypatch.setattr(os, "pwrite", recording)
    return names


def test_a_large_raw_dump_is_written_by_offset_from_two_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pwrite_threads: list[str]
) -> None:
    # small chunks: the helper always gets some, however the threads are scheduled
    monkeypatch.setattr(layout, "RAW_CHUNK_SIZE", 1 << 20)
    value = _value()
    path = tmp_path / "value.fkl"
    dump(value, path)
    assert "forklift-dump-raw" in pwrite_threads
    assert threading.current_thread().name in pwrite_threads
    pwrite_threads.clear()
    assert path.read_bytes() == _sequential_bytes(value, tmp_path, monkeypatch)
    loaded = load(path, verify=True)
    assert np.array_equal(loaded["big"], value["big"]) and loaded["text"] == value["text"]


def test_small_dumps_stay_sequential(tmp_path: Path, pwrite_threads: list[str]) -> None:
    dump({"a": np.ones(1000), "b": np.zeros(100_000)}, tmp_path / "small.fkl")
    assert pwrite_threads == []


def test_a_file_object_gets_the_same_bytes_after_what_it_held(tmp_path: Path) -> None:
    # the file already holds bytes where the dump goes: the alignment gaps must be zeroed,
    # and the file object left at the dump's end for what the caller writes next
    value = _value()
    memory = io.BytesIO()  # no file descriptor: written sequentially
    dump(value, memory)
    expected = memory.getvalue()
    path = tmp_path / "reused"
    path.write_bytes(b"\xff" * (len(expected) + 100))
    with open(path, "r+b") as handle:
        handle.write(b"head")
        dump(value, handle)
        assert handle.tell() == 4 + len(expected)
        handle.write(b"tail")
    data = path.read_bytes()
    assert data[4 : 4 + len(expected)] == expected
    assert data[4 + len(expected) : 8 + len(expected)] == b"tail"
    with open(path, "rb") as handle:
        assert handle.read(4) == b"head"
        assert np.array_equal(load(handle, verify=True)["big"], value["big"])


def test_a_file_opened_for_appending_is_written_in_order(
    tmp_path: Path, pwrite_threads: list[str]
) -> None:
    # pwrite on an O_APPEND descriptor appends, whatever the offset: never used there
    value = _value()
    path = tmp_path / "appended"
    path.write_bytes(b"previous")
    with open(path, "ab") as handle:
        dump(value, handle)
    assert pwrite_threads == []
    with open(path, "rb") as handle:
        assert handle.read(8) == b"previous"
        assert np.array_equal(load(handle, verify=True)["big"], value["big"])


_FILE_TOO_LARGE = """
import os, resource, sys, threading
import numpy as np
from forklift.persist import dump, positional
limit = positional.MIN_LENGTH
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
folder = sys.argv[1]
try:
    dump(np.ones(limit // 4), os.path.join(folder, "big.fkl"))
except OSError as error:
    print(type(error).__name__, error.errno)
print(sorted(os.listdir(folder)), threading.active_count())
# only the last of four chunks fails, whichever thread writes it
data = memoryview(bytes(limit))
with open(os.path.join(folder, "direct"), "wb") as handle:
    output = positional.open_positional(handle, limit)
    for start in range(0, limit, limit // 4):
        output.position = start + limit // 8
        output.defer(data[start : start + limit // 4], [0])
    try:
        output.flush("xxh3")
    except OSError as error:
        print(type(error).__name__, error.errno)
"""


def test_a_failed_write_on_either_thread_fails_the_dump(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes every write past the limit fail (EFBIG), on whichever thread it is
    # (Python ignores SIGXFSZ): the dump raises, leaves no file and no thread
    environment = dict(os.environ, PYTHONPATH=SRC)
    finished = subprocess.run(
        [sys.executable, "-c", _FILE_TOO_LARGE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=True,
    )
    error, leftovers, direct = finished.stdout.splitlines()
    assert error.split() == direct.split() == ["OSError", "27"]  # EFBIG
    assert leftovers == "[] 1"
