"""Suite-wide guards: every test must leave no threads, child processes or temp files behind.

The temp dir is redirected to a fresh folder for the session so that leftovers of this suite
can be told apart from other programs' files.
"""

from __future__ import annotations

import atexit
import builtins
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="forklift-tests-"))
os.environ["TMPDIR"] = str(_SESSION_TMP)
tempfile.tempdir = None  # recomputed from TMPDIR on next use

# Left by multiprocessing itself (forkserver sockets, resource tracker), removed at exit.
_ALLOWED_TEMP_PREFIXES = ("pymp-", "pytest-of-")
_GRACE_SECONDS = float(os.environ.get("FORKLIFT_TEST_LEAK_GRACE", "5"))


def _long_lived_helpers() -> set[int]:
    """Processes the stdlib keeps for the interpreter's lifetime by design."""
    pids: set[int] = set()
    for module_name, attribute in (
        ("multiprocessing.forkserver", "_forkserver"),
        ("multiprocessing.resource_tracker", "_resource_tracker"),
    ):
        import importlib

        module = importlib.import_module(module_name)
        helper = getattr(module, attribute, None)
        pid = getattr(helper, "_forkserver_pid", None) or getattr(helper, "_pid", None)
        if pid:
            pids.add(pid)
    return pids


def _children() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True)}


def _temp_entries() -> set[str]:
    names = {
        name for name in os.listdir(_SESSION_TMP) if not name.startswith(_ALLOWED_TEMP_PREFIXES)
    }
    # Large arrays for workers go to /dev/shm when it has room: this process's folders there
    # count too (other programs' are none of our business).
    mine = f"forklift-arrays-{os.getpid()}-"
    if os.path.isdir("/dev/shm"):
        names |= {f"/dev/shm/{name}" for name in os.listdir("/dev/shm") if name.startswith(mine)}
    return names


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    threads_before = set(threading.enumerate())
    children_before = _children()
    temp_before = _temp_entries()
    yield
    # forklift's shared process pool outlives calls on purpose; between tests it must not.
    reusable = sys.modules.get("forklift.pool.reusable")
    if reusable is not None:
        reusable.shutdown_reusable_executor(wait=True)
    deadline = time.monotonic() + _GRACE_SECONDS
    while True:
        new_threads = [
            thread
            for thread in threading.enumerate()
            if thread not in threads_before and thread.is_alive()
        ]
        new_children = _children() - children_before - _long_lived_helpers()
        new_temp = _temp_entries() - temp_before
        if not (new_threads or new_children or new_temp) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    problems = []
    if new_threads:
        problems.append(f"threads left running: {[t.name for t in new_threads]}")
    if new_children:
        described = []
        for pid in sorted(new_children):
            try:
                described.append(f"{pid} {' '.join(psutil.Process(pid).cmdline())[:120]}")
            except psutil.Error:
                continue
        if described:
            problems.append(f"child processes left running: {described}")
    if new_temp:
        problems.append(f"temp files left behind in {_SESSION_TMP}: {sorted(new_temp)}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


_PRINT = builtins.print


@pytest.fixture(autouse=True)
def builtin_print_restored() -> Iterator[None]:
    """ray's tqdm_ray, once imported, replaces ``builtins.print`` for the whole process; later
    tests (docstring examples that pickle ``print``) must see the real one."""
    yield
    builtins.print = _PRINT


def _remove_session_tmp() -> None:
    import shutil

    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


# Registered at import, before any test imports multiprocessing: exit handlers run last
# registered first, so this one runs after multiprocessing has removed its pymp- folders.
atexit.register(_remove_session_tmp)
