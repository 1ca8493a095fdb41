"""Resilient runs on real backends: retries, kept failures, task timeouts, checkpoints,
reproducible randomness and per-worker state."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import forklift
from forklift import Memory, Parallel, TaskFailure, delayed
from forklift.errors import ConfigurationError, TaskTimeoutError

BACKENDS = ["sequential", "threading"]


def fail_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("return_as", ["list", "generator", "generator_unordered"])
def test_on_error_return_keeps_every_success(
    backend: str, return_as: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="forklift.parallel"):
        results = list(
            Parallel(n_jobs=2, backend=backend, on_error="return", return_as=return_as)(  # type: ignore[arg-type]
                delayed(fail_on_odd)(i) for i in range(20)
            )
        )
    assert len(results) == 20
    successes = [r for r in results if not isinstance(r, TaskFailure)]
    failures = [r for r in results if isinstance(r, TaskFailure)]
    assert sorted(successes) == list(range(0, 20, 2))
    assert sorted(f.index for f in failures) == list(range(1, 20, 2))
    failure = failures[0]
    assert isinstance(failure.exception, ValueError) and "fail_on_odd" in failure.function
    assert failure.args == (failure.index,) and "ValueError" in failure.traceback
    if return_as != "generator_unordered":
        assert [r if not isinstance(r, TaskFailure) else r.index for r in results] == list(
            range(20)
        )
    assert "10 of 20 tasks failed" in caplog.text


class Flaky:
    """Fails the first ``failures`` calls for each argument, then succeeds."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls: dict[int, list[float]] = {}
        self._lock = threading.Lock()

    def __call__(self, x: int) -> int:
        with self._lock:
            times = self.calls.setdefault(x, [])
            times.append(time.monotonic())
            attempt = len(times)
        if attempt <= self.failures:
            raise self.error(f"attempt {attempt} of {x}")
        return x * 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_retries_make_flaky_tasks_succeed(backend: str) -> None:
    flaky = Flaky(failures=2)
    out = Parallel(n_jobs=2, backend=backend, retries=2)(delayed(flaky)(i) for i in range(6))
    assert out == [i * 10 for i in range(6)]
    assert all(len(times) == 3 for times in flaky.calls.values())


def test_retries_run_out_then_the_error_is_raised() -> None:
    flaky = Flaky(failures=5)
    with pytest.raises(ConnectionError, match=r"attempt 3 of \d"):
        Parallel(n_jobs=2, backend="threading", retries=2)(delayed(flaky)(i) for i in range(3))


def test_retry_on_limits_what_is_retried() -> None:
    flaky = Flaky(failures=1, error=KeyError)
    with pytest.raises(KeyError):
        Parallel(n_jobs=2, backend="threading", retries=3, retry_on=ConnectionError)(
            delayed(flaky)(i) for i in range(2)
        )
    flaky = Flaky(failures=1, error=KeyError)
    out = Parallel(n_jobs=2, backend="threading", retries=3, retry_on=(ConnectionError, KeyError))(
        delayed(flaky)(i) for i in range(2)
    )
    assert out == [0, 10]


def test_retry_backoff_waits_between_attempts() -> None:
    flaky = Flaky(failures=2)
    Parallel(n_jobs=1, backend="sequential", retries=2, retry_backoff=0.1)(
        delayed(flaky)(0) for _ in range(1)
    )
    first, second, third = flaky.calls[0]
    assert second - first >= 0.08  # ~0.1 s, minus jitter
    assert third - second >= 0.16  # ~0.2 s: the wait doubles


def test_retries_then_kept_failures_together() -> None:
    flaky = Flaky(failures=9)
    results = Parallel(n_jobs=2, backend="threading", retries=1, on_error="return")(
        delayed(flaky)(i) for i in range(3)
    )
    assert all(isinstance(r, TaskFailure) and r.attempts == 2 for r in results)


def test_task_timeout_on_threads_abandons_the_hung_task(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    def maybe_hang(x: int) -> int:
        if x == 3:
            release.wait(20)  # hangs until the test is over
        return x

    try:
        started = time.monotonic()
        results = Parallel(n_jobs=2, backend="threading", task_timeout=0.3, on_error="return")(
            delayed(maybe_hang)(i) for i in range(8)
        )
        assert time.monotonic() - started < 5
    finally:
        release.set()
    assert [r for r in results if not isinstance(r, TaskFailure)] == [0, 1, 2, 4, 5, 6, 7]
    [failure] = [r for r in results if isinstance(r, TaskFailure)]
    assert isinstance(failure.exception, TaskTimeoutError)
    assert "task 3" in str(failure.exception) and "maybe_hang" in str(failure.exception)


def test_task_timeout_raises_by_default() -> None:
    release = threading.Event()
    try:
        with pytest.raises(TimeoutError, match=r"task_timeout=0\.2s"):
            Parallel(n_jobs=2, backend="threading", task_timeout=0.2)(
                delayed(release.wait)(20) for _ in range(2)
            )
    finally:
        release.set()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_error": "ignore"}, "on_error must be one of"),
        ({"task_timeout": 0}, "task_timeout"),
        ({"retries": -1}, "retries"),
        ({"retry_on": (int,), "retries": 1}, "retry_on"),
        ({"checkpoint": "some/folder"}, "checkpoint must be a forklift.Memory"),
        ({"seed": -5}, "seed"),
    ],
)
def test_bad_resilience_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Parallel(**kwargs)  # type: ignore[arg-type]


def noisy(x: int) -> float:
    return float(forklift.task_rng().normal()) + x


def test_seeded_results_do_not_depend_on_workers_or_backend() -> None:
    runs = [
        Parallel(n_jobs=n_jobs, backend=backend, seed=7, batch_size=batch)(
            delayed(noisy)(i) for i in range(40)
        )
        for n_jobs, backend, batch in [
            (1, "sequential", "auto"),
            (2, "threading", 1),
            (2, "threading", 7),
        ]
    ]
    assert runs[0] == runs[1] == runs[2]
    other_seed = Parallel(n_jobs=2, backend="threading", seed=8)(
        delayed(noisy)(i) for i in range(40)
    )
    assert other_seed != runs[0]
    assert len(set(np.round(runs[0], 9) - np.arange(40))) == 40  # independent streams


def test_worker_state_from_an_initializer_on_threads() -> None:
    made: list[int] = []

    def load_model(scale: int) -> dict[str, int]:
        made.append(threading.get_ident())
        return {"scale": scale}

    def predict(x: int) -> int:
        return forklift.worker_state()["scale"] * x

    out = Parallel(n_jobs=2, backend="threading", initializer=load_model, initargs=(3,))(
        delayed(predict)(i) for i in range(10)
    )
    assert out == [3 * i for i in range(10)]
    assert len(made) == 2  # once per worker, not per task
    with pytest.raises(LookupError, match="initializer"):
        forklift.worker_state()


CHECKPOINTED = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from forklift import Memory, Parallel, delayed
    folder = Path(sys.argv[1])

    def work(i):
        with open(folder / "computed.txt", "a") as log:
            log.write(f"{i}\\n")
        if i == 12 and not (folder / "crashed-once").exists():
            (folder / "crashed-once").touch()
            os.kill(os.getpid(), signal.SIGKILL)  # the machine "reboots" mid-run
        return i * i

    memory = Memory(folder / "checkpoint", verbose=0)
    results = Parallel(n_jobs=2, backend="threading", batch_size=1, checkpoint=memory, verbose=1)(
        delayed(work)(i) for i in range(30)
    )
    print("RESULTS", results == [i * i for i in range(30)])
    """
)


def test_a_killed_run_resumes_computing_only_what_is_missing(tmp_path: Path) -> None:
    log = tmp_path / "computed.txt"
    first = subprocess.run(
        [sys.executable, "-c", CHECKPOINTED, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert first.returncode == -9  # killed mid-run
    before = log.read_text().split()
    second = subprocess.run(
        [sys.executable, "-c", CHECKPOINTED, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "RESULTS True" in second.stdout
    rerun = log.read_text().split()[len(before) :]
    assert "12" in rerun  # the task that was running when the process died
    # Only tasks still in flight at the kill (two workers) are computed a second time.
    assert len(set(rerun) & set(before)) <= 2
    restored = 30 - len(rerun)
    assert restored >= 8
    assert f"{restored} restored from the checkpoint" in second.stderr


def test_checkpoint_restores_without_running_again(tmp_path: Path) -> None:
    calls: list[int] = []

    def square(x: int) -> int:
        calls.append(x)
        return x * x

    memory = Memory(tmp_path, verbose=0)
    assert Parallel(n_jobs=2, backend="threading", checkpoint=memory)(
        delayed(square)(i) for i in range(10)
    ) == [i * i for i in range(10)]
    seen: list[object] = []
    again = Parallel(n_jobs=2, backend="threading", checkpoint=memory, reporters=[seen.append])(
        delayed(square)(i) for i in range(12)
    )
    assert again == [i * i for i in range(12)]
    assert sorted(calls) == sorted([*range(10), 10, 11])
    assert seen[-1].restored == 10  # type: ignore[attr-defined]


# -- on processes ------------------------------------------------------------------------------


def die_once(marker_folder: str, x: int) -> int:
    marker = Path(marker_folder) / f"died-{x}"
    if x == 5 and not marker.exists():
        marker.touch()
        os._exit(3)  # the worker process dies under this task
    return x * 2


@pytest.mark.parametrize("batch_size", [1, "auto"])
def test_a_worker_killed_under_a_task_is_retried_on_a_fresh_worker(
    tmp_path: Path, batch_size: object
) -> None:
    out = Parallel(n_jobs=2, retries=1, batch_size=batch_size)(  # type: ignore[arg-type]
        delayed(die_once)(str(tmp_path), i) for i in range(12)
    )
    assert out == [i * 2 for i in range(12)]
    assert (tmp_path / "died-5").exists()


def test_without_retries_a_dead_worker_still_fails_the_call(tmp_path: Path) -> None:
    with pytest.raises(forklift.TerminatedWorkerError):
        Parallel(n_jobs=2)(delayed(die_once)(str(tmp_path), i) for i in range(8))


def hang_on_three(x: int) -> int:
    if x == 3:
        time.sleep(60)
    return x


def test_task_timeout_on_processes_kills_only_the_hung_worker() -> None:
    from forklift.pool import warm_up

    # The timeout counts from dispatch: start the workers first, and leave a loaded machine
    # room (a quick task must never come near the limit; the hung one sleeps for a minute).
    warm_up(2)
    started = time.monotonic()
    results = Parallel(n_jobs=2, task_timeout=4.0, on_error="return")(
        delayed(hang_on_three)(i) for i in range(10)
    )
    assert time.monotonic() - started < 30
    assert [r for r in results if not isinstance(r, TaskFailure)] == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    [failure] = [r for r in results if isinstance(r, TaskFailure)]
    assert isinstance(failure.exception, TaskTimeoutError) and failure.index == 3
    # The leak guard then checks that no worker is left sleeping.


def test_seeded_results_are_the_same_on_processes() -> None:
    threads = Parallel(n_jobs=2, backend="threading", seed=11)(delayed(noisy)(i) for i in range(30))
    processes = Parallel(n_jobs=2, seed=11)(delayed(noisy)(i) for i in range(30))
    assert processes == threads


def scaled(x: int) -> int:
    return forklift.worker_state()["scale"] * x


def make_state(scale: int) -> dict[str, int]:
    return {"scale": scale, "pid": os.getpid()}


@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_worker_state_on_process_backends(backend: str) -> None:
    out = Parallel(n_jobs=2, backend=backend, initializer=make_state, initargs=(4,))(
        delayed(scaled)(i) for i in range(6)
    )
    assert out == [4 * i for i in range(6)]
