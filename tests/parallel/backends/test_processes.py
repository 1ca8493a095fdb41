"""The loky (process) backend on forklift's pool, through Parallel, for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from forklift import Parallel, TerminatedWorkerError, delayed, parallel_config
from forklift.errors import TaskPicklingError
from forklift.pool import shutdown_reusable_executor

BACKENDS = ["loky", "multiprocessing"]


@pytest.fixture(autouse=True)
def _shared_pool_is_shut_down() -> Iterator[None]:
    yield
    shutdown_reusable_executor(kill_workers=True)


def square(x: int) -> int:
    return x * x


def worker_pid(_: object = None) -> int:
    return os.getpid()


def nested_pids(n: int) -> list[int]:
    return Parallel(n_jobs=2)(delayed(worker_pid)(i) for i in range(n))


def set_marker(value: str) -> None:
    os.environ["FORKLIFT_TEST_MARKER"] = value


def read_env(name: str) -> str | None:
    return os.environ.get(name)


def read_marker(_: object = None) -> str | None:
    return os.environ.get("FORKLIFT_TEST_MARKER")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("return_as", ["list", "generator", "generator_unordered"])
def test_every_return_as(backend: str, return_as: str) -> None:
    results = Parallel(n_jobs=2, backend=backend, return_as=return_as)(
        delayed(square)(i) for i in range(30)
    )
    if return_as == "generator_unordered":
        assert sorted(results) == [i * i for i in range(30)]
    else:
        assert list(results) == [i * i for i in range(30)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_lambdas_and_task_errors(backend: str) -> None:
    offset = 3
    assert Parallel(n_jobs=2, backend=backend)(
        delayed(lambda x: x + offset)(i) for i in range(5)
    ) == [3, 4, 5, 6, 7]
    with pytest.raises(ZeroDivisionError):
        Parallel(n_jobs=2, backend=backend)(delayed(lambda x: 1 / x)(i) for i in range(-2, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_initializer(backend: str) -> None:
    results = Parallel(n_jobs=2, backend=backend, initializer=set_marker, initargs=("ready",))(
        delayed(read_marker)(i) for i in range(4)
    )
    assert results == ["ready"] * 4


def test_processes_alias_and_worker_reuse() -> None:
    first = set(Parallel(n_jobs=2, backend="processes")(delayed(worker_pid)(i) for i in range(8)))
    second = set(Parallel(n_jobs=2)(delayed(worker_pid)(i) for i in range(8)))
    assert first & second  # the shared pool's workers served both calls
    assert os.getpid() not in first


def test_sigkill_fails_the_call_and_the_next_call_works() -> None:
    def kill_self(x: int) -> int:
        if x == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.01)
        return x

    with pytest.raises(TerminatedWorkerError, match="SIGKILL") as caught:
        Parallel(n_jobs=2, batch_size=1)(delayed(kill_self)(i) for i in range(8))
    assert "kill_self" in str(caught.value)
    assert Parallel(n_jobs=2)(delayed(square)(i) for i in range(4)) == [0, 1, 4, 9]


@pytest.mark.parametrize("backend", BACKENDS)
def test_unpicklable_result_names_the_function(backend: str) -> None:
    with pytest.raises(TaskPicklingError, match="make_lock"):
        Parallel(n_jobs=2, backend=backend)(delayed(make_lock)() for _ in range(3))
    assert Parallel(n_jobs=2, backend=backend)(delayed(square)(i) for i in range(3)) == [0, 1, 4]


def make_lock() -> object:
    return threading.Lock()


@pytest.mark.parametrize("backend", BACKENDS)
def test_unpicklable_argument_fails_clearly(backend: str) -> None:
    with pytest.raises(TaskPicklingError, match="square"):
        Parallel(n_jobs=2, backend=backend)(delayed(square)(threading.Lock()) for _ in range(3))


def test_nested_parallel_does_not_multiply_processes() -> None:
    pid_lists = Parallel(n_jobs=2)(delayed(nested_pids)(4) for _ in range(2))
    for pids in pid_lists:
        assert len(set(pids)) == 1  # the nested call ran inside its worker (threads)
    assert all(pid != os.getpid() for pids in pid_lists for pid in pids)


def test_blas_threads_capped_to_cpu_share() -> None:
    from forklift._support.cpus import cpu_count

    values = Parallel(n_jobs=2)(delayed(read_env)("OMP_NUM_THREADS") for _ in range(2))
    expected = os.environ.get("OMP_NUM_THREADS") or str(max(1, cpu_count() // 2))
    assert values == [expected, expected]
    with parallel_config(inner_max_num_threads=1):
        values = Parallel(n_jobs=2)(delayed(read_env)("FORKLIFT_MAX_CPU_COUNT") for _ in range(2))
    assert values == ["1", "1"]  # the warm workers with another cap were replaced
    values = Parallel(n_jobs=2, inner_max_num_threads=3)(
        delayed(read_env)("FORKLIFT_MAX_CPU_COUNT") for _ in range(2)
    )
    assert values == ["3", "3"]


def test_two_caller_threads_at_once() -> None:
    outputs: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def run(key: int) -> None:
        try:
            outputs[key] = Parallel(n_jobs=2)(delayed(square)(key + i) for i in range(200))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(key,)) for key in (0, 1000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert outputs == {key: [(key + i) ** 2 for i in range(200)] for key in (0, 1000)}


SCRIPT_WITHOUT_GUARD = textwrap.dedent(
    """
    from forklift import Parallel, delayed
    print("module body ran", flush=True)

    def double(x):
        return 2 * x

    print(Parallel(n_jobs=2)(delayed(double)(i) for i in range(6)), flush=True)

    from forklift.pool import get_reusable_executor
    pool = get_reusable_executor(2)
    pool.warm_up(2)  # six quick tasks may all have run before the second worker connected
    print("pids", *pool.worker_pids(), pool.server_pid(), flush=True)
    """
)


def test_script_without_main_guard(tmp_path: Path) -> None:
    script = tmp_path / "no_guard.py"
    script.write_text(SCRIPT_WITHOUT_GUARD)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("module body ran") == 1, done.stdout
    assert "[0, 2, 4, 6, 8, 10]" in done.stdout
    # At exit, the pool's workers and fork server went with the interpreter.
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("pids")]
    pids = [int(pid) for pid in line.split()[1:]]
    assert len(pids) == 3
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if psutil.pid_exists(p)]


CTRL_C_CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    # A shell's background job (`pytest ... &`) starts with SIGINT ignored, and children
    # inherit that: take Ctrl-C the way an interactive Python does.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from forklift import Parallel, delayed
    from forklift.pool import get_reusable_executor

    def slow(x):
        time.sleep(30)
        return x

    def announce():
        pool = get_reusable_executor(2)
        pool.warm_up(2)
        print("workers", *pool.worker_pids(), pool.server_pid(), flush=True)

    announce()
    Parallel(n_jobs=2, batch_size=1)(delayed(slow)(i) for i in range(10))
    """
)


def test_ctrl_c_stops_tasks_and_workers_promptly() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line.startswith("workers"), line + (child.stderr.read() if child.stderr else "")
            pids = [int(p) for p in line.split()[1:]]
            time.sleep(0.5)  # the tasks are running now
            sent = time.monotonic()
            child.send_signal(signal.SIGINT)
            child.wait(timeout=15)
            elapsed = time.monotonic() - sent
            assert elapsed < 5, f"took {elapsed:.1f}s to stop"
            assert child.returncode != 0
            stderr = child.stderr.read() if child.stderr else ""
            assert "KeyboardInterrupt" in stderr
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in pids):
                time.sleep(0.05)
            alive = [p for p in pids if psutil.pid_exists(p)]
            assert not alive, f"left running: {alive}"
        finally:
            if child.poll() is None:
                child.kill()


def slow_marker(_: object = None) -> str | None:
    time.sleep(0.02)
    return os.environ.get("FORKLIFT_TEST_MARKER")


def test_two_threads_with_different_initializers_do_not_break_each_other() -> None:
    outputs: dict[str, list[str | None]] = {}
    errors: list[BaseException] = []

    def run(marker: str) -> None:
        try:
            outputs[marker] = Parallel(
                n_jobs=2, batch_size=1, initializer=set_marker, initargs=(marker,)
            )(delayed(slow_marker)(i) for i in range(30))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(marker,)) for marker in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert outputs == {"a": ["a"] * 30, "b": ["b"] * 30}


def sleep_for(seconds: float, pid_file: str) -> float:
    if seconds > 1:
        Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
    return seconds


def test_task_timeout_kills_the_stuck_worker(tmp_path: Path) -> None:
    from forklift.errors import TaskTimeoutError
    from forklift.pool import warm_up

    warm_up(2)  # the timeout counts from dispatch: do not spend it starting workers
    pid_file = str(tmp_path / "stuck.pid")
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError, match="sleep_for"):
        Parallel(n_jobs=2, task_timeout=3.0)(
            delayed(sleep_for)(s, pid_file) for s in (0.01, 30, 0.01)
        )
    assert time.monotonic() - started < 20
    stuck = int(Path(pid_file).read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and psutil.pid_exists(stuck):
        time.sleep(0.05)
    assert not psutil.pid_exists(stuck)
    assert Parallel(n_jobs=2)(delayed(square)(i) for i in range(4)) == [0, 1, 4, 9]
