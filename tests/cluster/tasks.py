"""Task functions for the cluster tests, in a module of their own so workers can import them."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


class TaskFailed(Exception):
    """A task's own error, to check it re-raises with its type."""


def size_of(value: Any) -> int:
    return len(value)


def work(x: int, offset: int = 0) -> tuple[int, int]:
    return (x, x * x + offset)


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise TaskFailed(f"task {x} failed on purpose")
    return x


def array_sum(array: Any, x: int) -> float:
    return float(array.sum()) + x


def slow(x: int, seconds: float) -> tuple[int, int]:
    time.sleep(seconds)
    return (x, os.getpid())


def fail_first_else_slow(x: int, seconds: float, markers: str) -> int:
    """Task 0 fails at once; the others record that they started, then sleep."""
    if x == 0:
        time.sleep(0.2)
        raise TaskFailed("the first task fails")
    Path(markers, str(x)).touch()
    time.sleep(seconds)
    return x


def die(x: int) -> int:
    """Kill the worker process running this task: a crash no code can catch."""
    os.kill(os.getpid(), 9)
    return x


def counted_square(x: int, counter: str) -> int:
    """Records each real computation (one line per run) - for cache tests across workers."""
    with open(counter, "a") as file:
        file.write(f"{x}\n")
    time.sleep(0.3)  # long enough for two workers to miss the same key together
    return x * x


def nested_dask_sum(n: int) -> int:
    """Runs inside a dask task: an inner Parallel on the same cluster."""
    from forklift import Parallel, delayed

    inner = Parallel(backend="dask", n_jobs=2, batch_size=1)(delayed(pow)(i, 2) for i in range(n))
    return sum(inner)
