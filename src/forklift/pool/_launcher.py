"""Starting workers: the pool's listening socket and its fork server process.

:class:`Launcher` owns the operating-system side of starting workers: an abstract-namespace
unix socket the workers connect back to (abstract: no file on disk to leave behind), an
authentication key, and the fork server (:mod:`._server`) with its command and report pipes.
The pool's manager thread accepts connections and reads reports; any thread holding the
pool's lock may ask for a worker. The server's reports arrive as typed records
(:class:`Forked`, :class:`Exited`): the letters of its report lines are read here only.

Imports only the standard library and forklift's stdlib-only modules.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection, answer_challenge, deliver_challenge
from typing import NamedTuple

from forklift.pool import _protocol as protocol

__all__ = ["Exited", "Forked", "Launcher", "Report", "describe_exit_status"]

logger = logging.getLogger("forklift.pool")

_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
_HANDSHAKE_TIMEOUT = struct.pack("ll", 5, 0)  # struct timeval: 5 s
_NO_TIMEOUT = struct.pack("ll", 0, 0)
# How long closing the pool waits for its fork server to exit before killing it.
_SERVER_EXIT_TIMEOUT_SECONDS = 5.0
# The server imports its optional preloads (numpy) only after this long without a request
# for a worker, so that the workers of a cold start have the cores to themselves: with numpy
# imported by the server meanwhile, the first result of 200 x 10 ms tasks came ~100 ms later
# on 2 cores (benchmarks/bench_pool.py, "pools shut down first").
IDLE_PRELOAD_DELAY_SECONDS = 0.3


class Forked(NamedTuple):
    """The server forked the worker asked for as ``worker_id`` (it will connect back)."""

    worker_id: int
    pid: int


class Exited(NamedTuple):
    """A worker of the server exited; ``status`` as ``waitpid`` gives it."""

    pid: int
    status: int


Report = Forked | Exited
_REPORTS: dict[bytes, type[Forked] | type[Exited]] = {b"F": Forked, b"X": Exited}

# ``python -c`` puts the current directory ('') first on sys.path: a traceback.py planted there
# would run in the server and every worker. So the boot removes it before importing anything
# (sys and gc are built in), then puts forklift's own folder first. (``-P`` does the same
# from Python 3.11 on, but 3.10 has no such flag; the caller's path replaces this one once it
# arrives.)
# The collector is off from the first line: the server never collects (see ._server), and
# the cycles it ran during the server's imports cost ~4 ms of each start (median of 15).
_BOOT = """import gc, sys
gc.disable()
if sys.path and sys.path[0] == "":
    del sys.path[0]
sys.path.insert(0, sys.argv[3])
from forklift.pool._server import main
main(int(sys.argv[1]), int(sys.argv[2]))
"""


class Launcher:
    """The listening socket and the fork server of one pool."""

    def __init__(
        self, env: Mapping[str, str], preload: Sequence[str], idle_preload: Sequence[str] = ()
    ) -> None:
        self.authkey = secrets.token_bytes(32)
        if sys.platform.startswith("linux"):
            self.address = f"\0forklift-{os.getpid()}-{secrets.token_hex(8)}"
        else:  # pragma: no cover - no abstract namespace: a socket file in a private folder
            import tempfile

            self._folder = tempfile.mkdtemp(prefix="forklift-pool-")
            self.address = os.path.join(self._folder, "pool.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.address)
        self.listener.listen(128)
        self.listener.setblocking(False)
        self._env = dict(env)
        self._preload = list(preload)
        self._idle_preload = list(idle_preload)
        self.server: subprocess.Popen[bytes] | None = None
        self._command_fd = -1
        self.report_fd = -1
        self._report_buffer = b""

    # -- the fork server ------------------------------------------------------------------
    def start_server(self) -> None:
        """Start the fork server (a new interpreter); returns without waiting for it."""
        command_read, command_write = os.pipe()
        report_read, report_write = os.pipe()
        package_parent = os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        )
        flags_of = getattr(subprocess, "_args_from_interpreter_flags", None)
        flags: list[str] = flags_of() if flags_of is not None else []
        try:
            self.server = subprocess.Popen(
                [
                    sys.executable,
                    *flags,
                    "-c",
                    _BOOT,
                    str(command_read),
                    str(report_write),
                    package_parent,
                ],
                pass_fds=(command_read, report_write),
                stdin=subprocess.DEVNULL,
                env=self._env,
                # Its own session: a Ctrl-C in the terminal reaches the caller, which decides.
                start_new_session=True,
            )
        finally:
            os.close(command_read)
            os.close(report_write)
        self._command_fd = command_write
        self.report_fd = report_read
        self._report_buffer = b""
        os.set_blocking(report_read, False)
        config = {
            "address": self.address,
            "authkey": self.authkey,
            "sys_path": list(sys.path),
            "caller_pid": os.getpid(),
            "preload": self._preload,
            "idle_preload": self._idle_preload,
            "idle_preload_delay": IDLE_PRELOAD_DELAY_SECONDS,
        }
        data = pickle.dumps(config)
        self._write(struct.pack("<Q", len(data)) + data)

    @property
    def server_running(self) -> bool:
        return self.server is not None and self._command_fd >= 0

    def request_worker(self, worker_id: int) -> None:
        """Ask the fork server for one more worker (it connects back to :attr:`listener`)."""
        if not self.server_running:
            self.start_server()
        self._write(f"S {worker_id}\n".encode())

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._command_fd, view)
                view = view[written:]
        except BrokenPipeError:
            # The server is gone (it may have failed to start): the end of its reports tells
            # the pool, which counts the workers it was starting as failed starts.
            pass

    def read_reports(self) -> list[Report] | None:
        """Reports ready now (the server writes ``F <worker id> <pid>`` and
        ``X <pid> <status>`` lines).

        None once the server has gone (its report pipe closed).
        """
        try:
            chunk = os.read(self.report_fd, 65536)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        self._report_buffer += chunk
        reports: list[Report] = []
        while b"\n" in self._report_buffer:
            line, self._report_buffer = self._report_buffer.split(b"\n", 1)
            kind, first, second = line.split()
            reports.append(_REPORTS[kind](int(first), int(second)))
        return reports

    def close_commands(self) -> None:
        """Tell the server to wind down: it exits once its workers have exited."""
        if self._command_fd >= 0:
            # Said, not only closed: a child forked from the caller may hold the pipe open.
            with contextlib.suppress(OSError):
                os.write(self._command_fd, b"Q\n")
            with contextlib.suppress(OSError):
                os.close(self._command_fd)
            self._command_fd = -1

    def forget_server(self) -> None:
        """The server is gone (or winding down): reap it and release its pipes."""
        self.close_commands()
        if self.report_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.report_fd)
            self.report_fd = -1
        if self.server is not None:
            if not _wait_for_exit(self.server, _SERVER_EXIT_TIMEOUT_SECONDS):
                self.server.kill()
            self.server.wait()
            self.server = None

    # -- workers connecting back ------------------------------------------------------------
    def accept(self) -> tuple[Connection, int, int] | None:
        """Accept one worker: ``(connection, worker_id, pid)``, or None if it was not one."""
        try:
            client, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return None
        if not self._peer_is_our_worker(client):
            client.close()  # before any handshake: a stranger cannot make the manager wait
            return None
        client.setblocking(True)
        # A worker that connects and then says nothing must not hang the manager thread: the
        # handshake's reads time out (kernel-level, so the descriptor stays blocking).
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _HANDSHAKE_TIMEOUT)
        connection = Connection(client.detach())
        try:
            deliver_challenge(connection, self.authkey)
            answer_challenge(connection, self.authkey)
            kind, worker_id, payload = protocol.receive(connection)
            if kind != protocol.HELLO:
                raise ValueError(f"unexpected first message {kind!r}")
            (pid,) = struct.unpack("<Q", payload)
            # Only now, over the authenticated socket: the caller's multiprocessing key (never
            # on a command line or in the environment, where other users could read it).
            caller_key = bytes(multiprocessing.current_process().authkey)
            protocol.send(connection, protocol.AUTHKEY, 0, caller_key)
            with socket.socket(fileno=os.dup(connection.fileno())) as again:
                again.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _NO_TIMEOUT)
        except Exception:
            connection.close()
            return None
        return connection, worker_id, pid

    def _peer_is_our_worker(self, client: socket.socket) -> bool:
        """The kernel's word on who connected (``SO_PEERCRED``): our user, and a child of our
        fork server. Any local process can reach the socket (abstract namespace: no file
        permissions), and a silent one would hold the manager for the handshake's timeout."""
        peer_credentials = getattr(socket, "SO_PEERCRED", None)
        if peer_credentials is None:  # pragma: no cover - not Linux: the authkey guards alone
            return True
        try:
            pid, uid, _ = _CREDENTIALS.unpack(
                client.getsockopt(socket.SOL_SOCKET, peer_credentials, _CREDENTIALS.size)
            )
        except OSError:
            return False
        server = self.server
        if uid != os.getuid() or server is None or _parent_of(pid) != server.pid:
            logger.warning(
                "refused a connection to the forklift pool's socket from pid %d (uid %d): "
                "not one of this pool's workers",
                pid,
                uid,
            )
            return False
        return True

    def close(self) -> None:
        self.forget_server()
        with contextlib.suppress(OSError):
            self.listener.close()
        folder = getattr(self, "_folder", None)
        if folder is not None:  # pragma: no cover - non-Linux
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def _wait_for_exit(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether ``process`` exited within ``timeout`` seconds.

    Woken by the exit itself (a pidfd turns readable), where ``Popen.wait(timeout)`` polls
    with growing sleeps and so returns up to ~10 ms after the exit it waits for, at the end
    of every interpreter that used the pool."""
    if process.poll() is not None:
        return True  # reaped now: its pid may no longer be its own
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            fd = pidfd_open(process.pid)
        except OSError:  # pragma: no cover - a kernel before 5.3
            pass
        else:
            try:
                readable, _, _ = select.select([fd], [], [], timeout)
            finally:
                os.close(fd)
            return bool(readable)
    try:  # pragma: no cover - not Linux
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover
        return False
    return True  # pragma: no cover


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (name) state ppid ...": the name may hold spaces and parentheses.
            return int(stat.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


_SIGNAL_HINTS = {
    int(signal.SIGKILL): " - often the kernel's out-of-memory killer, or a kill -9",
    int(signal.SIGSEGV): " - a segmentation fault, usually in compiled code",
}


def describe_exit_status(status: int | None) -> str:
    """Words for a ``waitpid`` status: which signal killed the process, or its exit code."""
    if status is None:
        return "it exited (its exit status could not be read)"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown signal"
        hint = _SIGNAL_HINTS.get(number, "")
        return f"it was killed by signal {number} ({name}){hint}"
    if os.WIFEXITED(status):
        return f"it exited with code {os.WEXITSTATUS(status)} (e.g. os._exit() in the task)"
    return f"it stopped with status {status}"
