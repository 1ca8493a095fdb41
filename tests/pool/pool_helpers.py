"""Functions that tasks run in workers (importable by reference)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def square(x: int) -> int:
    return x * x


def pid_of_worker(_: object = None) -> int:
    return os.getpid()


def sleep_then_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def pid_and_numpy_after(seconds: float) -> tuple[int, bool]:
    """This worker's pid, and whether numpy is loaded in it (this module never imports it)."""
    time.sleep(seconds)
    return os.getpid(), "numpy" in sys.modules


def fail(message: str) -> None:
    raise ValueError(message)


def segfault() -> None:
    ctypes.string_at(0)


def hard_exit(code: int) -> None:
    os._exit(code)


def kill_myself() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def environment(name: str) -> str | None:
    return os.environ.get(name)


def start_grandchild(pid_file: str) -> int:
    """Start a long sleep the worker does not wait for; return its pid."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    Path(pid_file).write_text(str(child.pid))
    time.sleep(60)
    return child.pid


class CountsUnpickling:
    """Appends a line to a file each time an instance is unpickled."""

    def __init__(self, path: str, size: int = 0) -> None:
        self.path = path
        self.blob = b"x" * size

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return _rebuild_counter, (self.path, len(self.blob))


def _rebuild_counter(path: str, size: int) -> CountsUnpickling:
    with open(path, "a") as file:
        file.write(f"{os.getpid()}\n")
    return CountsUnpickling(path, size)


STATE: dict[str, object] = {}


def remember(key: str, value: object) -> None:
    STATE[key] = value


def recall(key: str) -> object:
    return STATE.get(key)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as dead (its parent reaps it).
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
