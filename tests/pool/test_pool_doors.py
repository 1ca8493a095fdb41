"""The pool's doors: the fork server dies with its caller, imports nothing from the caller's
current directory, and the pool's socket lets in only its own workers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from tests.pool import pool_helpers as helpers

SRC = str(Path(__file__).parents[2] / "src")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # An empty entry would put the current directory on the path: join only real ones.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    return env


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


_CALLER_WITH_FORKED_CHILDREN = textwrap.dedent(
    """
    import json, multiprocessing, time
    from forklift.pool import ProcessPool

    pool = ProcessPool(2)
    assert pool.warm_up(2) == 2
    # Forked children inherit every descriptor of the caller: the fork server's command pipe
    # and the workers' sockets stay open in them after the caller dies.
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=time.sleep, args=(120,)) for _ in range(2)]
    for child in children:
        child.start()
    print(json.dumps({
        "server": pool.server_pid(),
        "workers": pool.worker_pids(),
        "children": [child.pid for child in children],
    }), flush=True)
    time.sleep(120)
    """
)


_NO_PIDFD = "import os\nos.__dict__.pop('pidfd_open', None)\n"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("watch", ["pidfd", "polling"])
def test_fork_server_and_workers_die_with_a_sigkilled_caller(tmp_path: Path, watch: str) -> None:
    env = _env()
    if watch == "polling":  # the fallback where there is no pidfd: hide os.pidfd_open
        (tmp_path / "sitecustomize.py").write_text(_NO_PIDFD)
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    caller = subprocess.Popen(
        [sys.executable, "-c", _CALLER_WITH_FORKED_CHILDREN],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    pids: dict[str, list[int]] = {"server": [], "workers": [], "children": []}
    try:
        assert caller.stdout is not None
        started = json.loads(caller.stdout.readline())
        pids = {
            "server": [started["server"]],
            "workers": started["workers"],
            "children": started["children"],
        }
        assert all(helpers.pid_alive(pid) for pid in pids["server"] + pids["workers"])
        caller.kill()
        caller.wait(timeout=30)
        assert all(helpers.pid_alive(pid) for pid in pids["children"])  # they hold the pipes
        pool_pids = pids["server"] + pids["workers"]
        gone = helpers.wait_until(
            lambda: not any(helpers.pid_alive(pid) for pid in pool_pids), timeout=10
        )
        assert gone, f"still alive: {[pid for pid in pool_pids if helpers.pid_alive(pid)]}"
    finally:
        caller.kill()
        caller.wait()
        if caller.stdout is not None:
            caller.stdout.close()
        _kill_all(pids["children"] + pids["workers"] + pids["server"])


_SHUTDOWN_WITH_FORKED_CHILD = textwrap.dedent(
    """
    import json, multiprocessing, time
    from forklift.pool import ProcessPool

    pool = ProcessPool(1)
    pool.warm_up(1)
    server = pool._launcher.server
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))
    child.start()
    started = time.monotonic()
    pool.shutdown(wait=True)
    took = time.monotonic() - started
    child.kill()
    child.join()
    print(json.dumps({"took": took, "server_exit": server.returncode}), flush=True)
    """
)


@pytest.mark.timeout(120)
def test_shutdown_does_not_wait_for_a_forked_child_holding_the_pipe(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", _SHUTDOWN_WITH_FORKED_CHILD],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
        timeout=100,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert report["server_exit"] == 0  # it exited when told, not killed after a timeout
    assert report["took"] < 4.5


_PLANTED_TRACEBACK = textwrap.dedent(
    """
    import os, sys
    here = os.path.dirname(os.path.abspath(__file__))
    open(os.path.join(here, f"planted-ran-in-{os.getpid()}"), "w").close()
    # Then step aside for the real module, so that whoever imported us goes on working.
    sys.path[:] = [entry for entry in sys.path if entry not in ("", here)]
    del sys.modules["traceback"]
    import traceback
    """
)
_SCRIPT_IN_ANOTHER_FOLDER = textwrap.dedent(
    """
    import os
    from forklift import Parallel, delayed
    pids = Parallel(n_jobs=2)(delayed(os.getpid)() for _ in range(4))
    print(len(pids), os.getpid() not in pids)
    """
)


@pytest.mark.timeout(120)
def test_a_module_planted_in_the_current_directory_does_not_run(tmp_path: Path) -> None:
    app, current = tmp_path / "app", tmp_path / "current"
    app.mkdir()
    current.mkdir()
    (app / "script.py").write_text(_SCRIPT_IN_ANOTHER_FOLDER)
    (current / "traceback.py").write_text(_PLANTED_TRACEBACK)
    finished = subprocess.run(
        [sys.executable, str(app / "script.py")],
        capture_output=True,
        text=True,
        cwd=current,
        env=_env(),
        timeout=100,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["4", "True"]
    assert sorted(path.name for path in current.iterdir()) == ["traceback.py"]


@pytest.mark.timeout(120)
def test_a_fork_server_that_cannot_start_breaks_the_pool(make_pool) -> None:  # type: ignore[no-untyped-def]
    from forklift.errors import WorkerStartError

    # A real interpreter that refuses to start (a fatal error before any code runs): the
    # pool must give up after a few attempts, not start servers forever.
    pool = make_pool(1, env={"PYTHONHASHSEED": "not a number"})
    future = pool.submit(helpers.square, 3)
    with pytest.raises(WorkerStartError, match="fork server"):
        future.result(timeout=60)
    assert pool.broken


def _connect_to(pool: Any) -> socket.socket:
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    peer.settimeout(30)
    peer.connect(pool._launcher.address)
    return peer


@pytest.mark.timeout(120)
def test_a_silent_stranger_is_refused_without_a_word() -> None:
    from forklift import Parallel, delayed
    from forklift.pool import get_reusable_executor

    pool = get_reusable_executor(2)
    assert pool.warm_up(2) == 2
    with _connect_to(pool) as stranger:
        # The call needs no new worker; it waits only if a stranger holds the manager thread.
        started = time.monotonic()
        assert Parallel(n_jobs=2)(delayed(helpers.square)(i) for i in range(8)) == [
            i * i for i in range(8)
        ]
        took = time.monotonic() - started
        # Refused before any handshake: the pool closed the socket without sending its
        # challenge (the manager never waited on a peer that says nothing).
        assert stranger.recv(1024) == b""
    assert took < 4.0  # the handshake's timeout, which a stranger used to cost, is 5 s


@pytest.mark.timeout(120)
@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to setuid")
def test_a_process_of_another_user_is_refused(make_pool) -> None:  # type: ignore[no-untyped-def]
    pool = make_pool(1)
    assert pool.warm_up(1) == 1
    address = pool._launcher.address
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, connect, tell what the pool said
        code = 1
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
                peer.settimeout(30)
                peer.connect(address)
                os.write(write_end, b"said:" + peer.recv(1024))
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        said = answer.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert said == b"said:"  # closed without a word
    assert pool.submit(helpers.square, 4).result(timeout=60) == 16
