"""The fork server: a fresh interpreter that forks workers on request.

Why not fork the caller: the caller may already run threads (ours, BLAS, OpenMP, the user's),
and a forked copy of a multi-threaded process can deadlock on a lock some other thread held.
Why not spawn each worker: a new interpreter per worker costs tens of milliseconds, and the
stdlib's spawn and forkserver re-run the user's ``__main__`` module in the worker, which
breaks scripts without an ``if __name__ == "__main__":`` guard.

So the pool starts this server once: a new interpreter (``subprocess``, i.e. fork+exec, safe
in a threaded parent) with the caller's ``sys.path`` and environment that imports forklift's
worker code (and numpy when the caller uses it) but never the user's main module. The server
is single-threaded, so forking it is safe and cheap; each child becomes a worker.

Channels (file descriptors inherited from the pool)::

    pool --commands fd--> server    "S <worker id>\\n": fork a worker; "Q\\n" or EOF: wind down
                                    and exit
    server --reports fd--> pool     "F <worker id> <pid>\\n" forked, "X <pid> <status>\\n" exited
    worker --unix socket--> pool    the worker connects back itself (see ._worker)

The server reaps its children, so the pool learns each worker's exit status (signal or exit
code) from the reports even though the workers are not its own children. Each worker is the
leader of its own process group, so killing the group kills whatever the task started.

The server also watches its caller itself, not only the command pipe: a child the caller
forked (``multiprocessing``'s fork start method) inherits the pipe's write end and would keep
it open after the caller died. It holds a pidfd of the caller (readable when the caller
exits; no other process holds it), or, where there is no pidfd, checks ``getppid()`` every
half second. When the caller is gone it kills its workers at once - their results have
nobody to go to - and exits. (``PR_SET_PDEATHSIG`` was rejected: it fires when the *thread*
that started the server exits, so a pool started from a short-lived thread would lose it.)

The server's objects are *frozen* before each fork (``gc.freeze()``, with the server's own
collector off, as the :mod:`gc` documentation recommends for fork servers): a worker's
collections then never walk what it inherited - forklift, cloudpickle, numpy and the
preloads - so they stay short, and they never write to the inherited objects' headers, so
those pages stay shared instead of being copied into every worker. Measured with numpy
preloaded (21,685 inherited objects), 2 workers, interleaved runs on a loaded 2-core VM: a
task unpickling three lists of 100,000 calls took 0.51-0.70 s instead of 0.75-1.13 s, and
each worker held 24.5 MB of private memory instead of 29.5 MB. The server itself never
collects: it makes little garbage (a failed preload's traceback), and that is frozen with the
rest. Rejected: ``gc.collect()`` before each fork (milliseconds on every worker start, for
garbage the server hardly makes) and leaving the collector alone (each worker's full
collections walked, and so copied, every page holding an inherited object).

Optional preloads (numpy, when the caller has it) wait until no worker was asked for during
the pool's ``idle_preload_delay`` (0.3 s): imported at once, they took a core from the first
workers of a cold start (the first result of 200 x 10 ms tasks, pools shut down first, came
~100 ms later on 2 cores). Rejected: lowering the server's priority while it imports (workers
forked from it would inherit it, and an unprivileged process cannot raise it back).

Winding down, the server wakes on each worker's exit (``SIGCHLD`` through the wakeup fd)
rather than on a 10 ms tick, and then leaves with ``os._exit``: the caller's own exit waits
for it, and its interpreter's teardown (~7 ms) frees nothing anyone needs.

Imports only the standard library and :mod:`._worker`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pickle
import select
import signal
import struct
import sys
import time
import traceback
from typing import Any

__all__ = ["main"]

_SHUTDOWN_GRACE_SECONDS = 3.0
# Without a pidfd, how often the server checks that its caller is still its parent.
_CALLER_POLL_SECONDS = 0.5


def main(command_fd: int, report_fd: int) -> None:
    """Serve fork requests until the command channel closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # see the module docstring; workers turn it back on
    config = _read_config(command_fd)
    sys.path[:] = config["sys_path"]
    from forklift.pool._worker import run_worker

    for name in config["preload"]:
        with contextlib.suppress(Exception):  # a failed preload only costs speed
            importlib.import_module(name)
    # Heavy optional preloads (numpy) are imported once the server has been idle for a while,
    # so that the first workers of a cold start are not held up by them; later workers get
    # them for free.
    preloads = [name for name in config["idle_preload"] if name not in sys.modules]
    idle_delay: float = config["idle_preload_delay"]
    last_request = time.monotonic()

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    caller_pid: int = config["caller_pid"]
    caller_fd = _watch_caller(caller_pid)
    watched = [command_fd, wake_read] + ([caller_fd] if caller_fd >= 0 else [])
    children: set[int] = set()
    buffer = b""
    open_channel = True
    while open_channel:
        try:
            timeout = None if caller_fd >= 0 else _CALLER_POLL_SECONDS
            if preloads:
                quiet = last_request + idle_delay - time.monotonic()
                timeout = max(0.0, min(quiet, timeout if timeout is not None else quiet))
            readable, _, _ = select.select(watched, [], [], timeout)
        except InterruptedError:
            continue
        if caller_fd in readable or (caller_fd < 0 and os.getppid() != caller_pid):
            _wind_down(children, -1, wake_read, grace=0.0)  # the caller is gone: no one waits
            _exit_at_once()
        if not readable:
            if preloads and time.monotonic() - last_request >= idle_delay:
                with contextlib.suppress(Exception):  # a failed optional preload only costs speed
                    importlib.import_module(preloads.pop(0))
            continue
        if wake_read in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_read, 4096)
        _reap(children, report_fd)
        if command_fd not in readable:
            continue
        chunk = os.read(command_fd, 4096)
        if not chunk:
            open_channel = False
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.startswith(b"S "):
                last_request = time.monotonic()
                worker_id = int(line[2:])
                fds = (command_fd, report_fd, wake_read, wake_write, caller_fd)
                pid = _fork_worker(run_worker, config, worker_id, fds)
                children.add(pid)
                _report(report_fd, f"F {worker_id} {pid}\n")
            elif line == b"Q":  # quit: as if the channel closed (a forked child may hold it)
                open_channel = False
    _wind_down(children, report_fd, wake_read, grace=_SHUTDOWN_GRACE_SECONDS)
    _exit_at_once()


def _watch_caller(caller_pid: int) -> int:
    """A pidfd of the caller, or -1 (then the loop polls ``getppid()``); exits if it is gone."""
    if os.getppid() != caller_pid:
        raise SystemExit(0)  # the caller died before we got here
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:  # pragma: no cover - not Linux, or Python built without it
        return -1
    try:
        fd: int = pidfd_open(caller_pid)
    except OSError:  # pragma: no cover - a kernel before 5.3
        return -1
    if os.getppid() != caller_pid:  # it died meanwhile: the pid may name another process now
        raise SystemExit(0)
    return fd


def _read_config(command_fd: int) -> dict[str, Any]:
    header = _read_exactly(command_fd, 8)
    (size,) = struct.unpack("<Q", header)
    config: dict[str, Any] = pickle.loads(_read_exactly(command_fd, size))
    return config


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise SystemExit("forklift fork server: the pool closed before sending its config")
        data += chunk
    return data


def _fork_worker(
    run_worker: Any, config: dict[str, Any], worker_id: int, fds: tuple[int, ...]
) -> int:
    gc.freeze()  # see the module docstring
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        gc.enable()
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in fds:
            if fd >= 0:
                os.close(fd)
        code = run_worker(config["address"], config["authkey"], worker_id)
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reap(children: set[int], report_fd: int) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        _report(report_fd, f"X {pid} {status}\n")


def _report(report_fd: int, line: str) -> None:
    with contextlib.suppress(OSError):  # the pool is gone: nobody to tell
        os.write(report_fd, line.encode())


def _wind_down(children: set[int], report_fd: int, wake_read: int, grace: float) -> None:
    """The pool closed the channel: give workers a moment to exit, then kill their groups.

    Each exit wakes the server at once (``SIGCHLD`` writes to ``wake_read``), not at the next
    tick of a polling loop: the caller's interpreter exit waits for this."""
    deadline = time.monotonic() + grace
    while children:
        _reap(children, report_fd)
        remaining = deadline - time.monotonic()
        if not children or remaining <= 0:
            break
        with contextlib.suppress(InterruptedError):
            select.select([wake_read], [], [], remaining)
        with contextlib.suppress(BlockingIOError):
            os.read(wake_read, 4096)
    for pid in list(children):
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    while children:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        children.discard(pid)
        _report(report_fd, f"X {pid} {status}\n")


def _exit_at_once() -> None:
    """Exit without the interpreter's teardown (~7 ms of freeing modules nobody will use
    again; the caller's own exit waits for this process): the server runs no user code but
    the preloads, and holds nothing that needs finalizing."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)
