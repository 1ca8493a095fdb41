"""Many threads and processes on one cache: one computation per key, no lock outlives a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from forklift import Memory

WORKER = textwrap.dedent(
    """
    import sys, time
    from forklift import Memory
    cache, counter, calls, delay, timeout = sys.argv[1:6]
    calls, delay = int(calls), float(delay)
    memory = Memory(cache, verbose=0, wait_timeout=None if timeout == "none" else float(timeout))

    def slow_square(x):
        with open(counter, "a") as file:
            file.write("run\\n")
        print("computing", flush=True)
        time.sleep(delay)
        return x * x

    cached = memory.cache(slow_square)
    print("ready", flush=True)
    results = {cached(12) for _ in range(calls)}
    print("RESULTS", sorted(results), flush=True)
    """
)


def start_worker(
    cache: Path, counter: Path, calls: int, delay: float, timeout: str = "none"
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(cache), str(counter), str(calls), str(delay), timeout],
        stdout=subprocess.PIPE,
        text=True,
    )


def runs(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_processes_missing_together_compute_once(tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    workers = [start_worker(tmp_path / "c", counter, calls=5, delay=0.5) for _ in range(6)]
    outputs = []
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        outputs.append(out)
    assert runs(counter) == 1, outputs
    assert all("RESULTS [144]" in out for out in outputs)


def test_threads_missing_together_compute_once(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0)
    calls: list[int] = []
    lock = threading.Lock()

    @memory.cache
    def slow(x: int) -> int:
        with lock:
            calls.append(x)
        time.sleep(0.3)
        return x + 1

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(slow(1))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [2] * 8
    assert calls == [1]


def test_a_crashed_writer_leaves_no_blocking_lock(tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    doomed = start_worker(tmp_path / "c", counter, calls=1, delay=30)
    assert doomed.stdout is not None
    assert doomed.stdout.readline().strip() == "ready"
    assert doomed.stdout.readline().strip() == "computing"  # it holds the key's lock now
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.communicate(timeout=10)
    assert len(list(tmp_path.rglob("*.claim"))) == 1  # the dead writer's claim is left
    started = time.monotonic()
    survivor = start_worker(tmp_path / "c", counter, calls=1, delay=0.0)
    out, _ = survivor.communicate(timeout=30)
    assert "RESULTS [144]" in out
    assert time.monotonic() - started < 10  # it did not wait out the dead writer
    assert runs(counter) == 2
    assert not list(tmp_path.rglob("*.claim"))  # taken over, then published as the entry
    assert len(list(tmp_path.rglob("*.entry"))) == 1


def test_a_waiter_takes_over_when_the_writer_is_killed(tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    doomed = start_worker(tmp_path / "c", counter, calls=1, delay=30)
    assert doomed.stdout is not None
    assert doomed.stdout.readline().strip() == "ready"
    assert doomed.stdout.readline().strip() == "computing"
    waiters = [start_worker(tmp_path / "c", counter, calls=1, delay=0.5) for _ in range(3)]
    for waiter in waiters:
        assert waiter.stdout is not None
        assert waiter.stdout.readline().strip() == "ready"  # then it waits on the claim
    time.sleep(0.5)
    assert runs(counter) == 1  # nobody computes while the writer lives
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.communicate(timeout=10)
    outputs = [waiter.communicate(timeout=30)[0] for waiter in waiters]
    assert all("RESULTS [144]" in out for out in outputs), outputs
    assert runs(counter) == 2  # one waiter took the claim over; the others then hit
    assert not list(tmp_path.rglob("*.claim"))


def test_waiting_has_a_timeout_and_then_computes_itself(tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    slow = start_worker(tmp_path / "c", counter, calls=1, delay=4)
    assert slow.stdout is not None
    slow.stdout.readline()
    assert slow.stdout.readline().strip() == "computing"
    started = time.monotonic()
    impatient = start_worker(tmp_path / "c", counter, calls=1, delay=0.0, timeout="0.3")
    out, _ = impatient.communicate(timeout=30)
    assert "RESULTS [144]" in out
    assert time.monotonic() - started < 3.5  # gave up waiting after 0.3 s, computed itself
    slow.communicate(timeout=30)
    assert runs(counter) == 2
