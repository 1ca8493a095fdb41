"""backend="dask" against a real LocalCluster with two worker processes on loopback."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.cluster import tasks
from tests.cluster.conftest import check_shared_cache, start_dask_cluster, stop_dask_cluster

from forklift import Parallel, delayed, parallel_config
from forklift.errors import (
    ClusterConnectionError,
    ClusterWorkerLostError,
    TasksCancelledWarning,
    TerminatedWorkerError,
)

pytestmark = pytest.mark.cluster
distributed = pytest.importorskip("distributed")

RETURN_AS = ["list", "generator", "generator_unordered"]


def run(return_as: str, **parallel: Any) -> list[Any]:
    results = Parallel(return_as=return_as, **parallel)(
        delayed(tasks.work)(x, offset=3) for x in range(40)
    )
    results = list(results)
    return sorted(results) if return_as == "generator_unordered" else results


@pytest.mark.parametrize("return_as", RETURN_AS)
def test_same_results_as_threads_and_processes(dask_client: Any, return_as: str) -> None:
    expected = run("list", n_jobs=2, backend="threading")
    assert run("list", n_jobs=2, backend="loky") == expected
    assert run(return_as, n_jobs=2, backend="dask", client=dask_client) == expected
    assert run(return_as, n_jobs=2, backend="dask", batch_size=1) == expected


def test_current_client_and_parallel_config(dask_client: Any) -> None:
    # No client given: the current one. No n_jobs given: the whole cluster (2 threads).
    with parallel_config(backend="dask"):
        assert Parallel()(delayed(tasks.work)(x) for x in range(5)) == [
            tasks.work(x) for x in range(5)
        ]
        from forklift import effective_n_jobs

        assert effective_n_jobs() == 2
    with parallel_config(backend="dask", client=dask_client, n_jobs=-1):
        assert effective_n_jobs() == 2


def test_lambdas_and_closures_travel(dask_client: Any) -> None:
    base = 10
    assert Parallel(backend="dask")(delayed(lambda x: x + base)(x) for x in range(4)) == [
        10,
        11,
        12,
        13,
    ]


def test_task_error_reraises_with_its_type(dask_client: Any) -> None:
    with pytest.raises(tasks.TaskFailed, match="task 7 failed") as caught:
        Parallel(backend="dask", batch_size=2)(delayed(tasks.fail_on)(x, 7) for x in range(20))
    assert "fail_on" in str(caught.value.__cause__)  # the worker's traceback, chained


def test_large_array_is_scattered_once(dask_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    scatters: list[Any] = []
    real_scatter = dask_client.scatter

    def counting_scatter(data: Any, *args: Any, **kwargs: Any) -> Any:
        scatters.append(data)
        return real_scatter(data, *args, **kwargs)

    monkeypatch.setattr(dask_client, "scatter", counting_scatter)
    big = np.arange(500_000, dtype=np.float64)  # 4 MB
    small = np.arange(10)
    results = Parallel(backend="dask", client=dask_client, batch_size=1)(
        delayed(tasks.array_sum)(big if x % 2 else small, x) for x in range(12)
    )
    assert results == [tasks.array_sum(big if x % 2 else small, x) for x in range(12)]
    assert len(scatters) == 1 and scatters[0][0] is big

    # Opt-outs: scatter=False, or a threshold above the array's size.
    scatters.clear()
    for params in ({"scatter": False}, {"scatter_threshold": "10M"}):
        results = Parallel(backend="dask", client=dask_client, batch_size=1, **params)(
            delayed(tasks.array_sum)(big, x) for x in range(3)
        )
        assert results == [tasks.array_sum(big, x) for x in range(3)]
    assert scatters == []

    # scatter=[obj]: that object is scattered whatever its size, once.
    Parallel(backend="dask", client=dask_client, scatter=[small], batch_size=1)(
        delayed(tasks.array_sum)(small, x) for x in range(4)
    )
    assert len(scatters) == 1 and scatters[0][0] is small


def test_scattered_data_is_released_after_the_call(dask_client: Any) -> None:
    big = np.ones(300_000)
    Parallel(backend="dask", batch_size=1)(delayed(tasks.array_sum)(big, x) for x in range(4))

    def forklift_keys(dask_scheduler: Any) -> list[str]:
        return [str(key) for key in dask_scheduler.tasks if str(key).startswith("forklift-")]

    deadline = time.monotonic() + 10
    while dask_client.run_on_scheduler(forklift_keys) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dask_client.run_on_scheduler(forklift_keys) == []


def test_error_cancels_pending_work_on_the_cluster(dask_client: Any, marker_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(tasks.TaskFailed):
        Parallel(backend="dask", batch_size=1, pre_dispatch="all")(
            delayed(tasks.fail_first_else_slow)(x, 1.0, str(marker_dir)) for x in range(12)
        )
    assert time.monotonic() - started < 5  # did not wait for the 11 slow tasks

    def forklift_keys(dask_scheduler: Any) -> list[str]:
        return [str(key) for key in dask_scheduler.tasks if str(key).startswith("forklift-")]

    deadline = time.monotonic() + 10
    while dask_client.run_on_scheduler(forklift_keys) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dask_client.run_on_scheduler(forklift_keys) == []
    time.sleep(1.5)  # a task that was running when cancelled finishes in its worker thread
    # Only tasks running when the error came started: the one beside the failing task, and
    # perhaps one its worker took before the cancellation arrived - not the other nine.
    assert len(list(marker_dir.iterdir())) <= 3


def test_abandoned_generator_cancels_the_rest(dask_client: Any, marker_dir: Path) -> None:
    results = Parallel(backend="dask", batch_size=1, pre_dispatch="all", return_as="generator")(
        delayed(tasks.fail_first_else_slow)(x, 0.5, str(marker_dir)) for x in range(1, 20)
    )
    assert next(results) == 1
    with pytest.warns(TasksCancelledWarning, match="cancelled"):
        results.close()
    time.sleep(1.5)
    assert len(list(marker_dir.iterdir())) < 8


@pytest.mark.slow
@pytest.mark.usefixtures("dask_client")  # warmed-up dask: its process-wide threads exist
def test_killed_worker_task_is_rescheduled(tmp_path: Path) -> None:
    # A cluster of its own: the nanny replaces the killed worker by a new process, which
    # must be gone when the test ends.
    cluster, client = start_dask_cluster(tmp_path)
    try:
        worker_pids = set(client.run(os.getpid).values())
        # Task 0 is short, the others long: when task 0's result arrives, the other worker
        # is surely in the middle of task 1.
        results = Parallel(
            backend="dask", client=client, batch_size=1, return_as="generator", n_jobs=2
        )(delayed(tasks.slow)(x, 0.1 if x == 0 else 0.6) for x in range(8))
        first = next(results)
        (victim,) = worker_pids - {first[1]}
        os.kill(victim, signal.SIGKILL)
        collected = [first, *results]
        assert [x for x, _ in collected] == list(range(8))
        assert collected[1][1] != victim  # task 1 was rescheduled on a live worker
        assert victim not in {pid for _, pid in collected[1:]}
    finally:
        stop_dask_cluster(cluster, client)


@pytest.mark.slow
@pytest.mark.usefixtures("dask_client")  # warmed-up dask: its process-wide threads exist
def test_worker_dying_every_time_is_a_forklift_error(tmp_path: Path) -> None:
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster, client = start_dask_cluster(tmp_path)
    try:
        with pytest.raises(ClusterWorkerLostError, match="workers kept dying") as caught:
            Parallel(backend="dask", client=client)(delayed(tasks.die)(x) for x in range(1))
        assert isinstance(caught.value, TerminatedWorkerError)
        assert type(caught.value.__cause__).__name__ == "KilledWorker"
    finally:
        stop_dask_cluster(cluster, client)


def test_used_from_several_threads_at_once(dask_client: Any) -> None:
    outputs: dict[int, list[Any]] = {}

    def call(index: int) -> None:
        outputs[index] = Parallel(backend="dask", client=dask_client, batch_size=1)(
            delayed(tasks.work)(x, offset=index) for x in range(10)
        )

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outputs == {i: [tasks.work(x, offset=i) for x in range(10)] for i in range(3)}


def test_with_block_keeps_sharing_across_calls(
    dask_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scatters: list[Any] = []
    real_scatter = dask_client.scatter
    monkeypatch.setattr(
        dask_client,
        "scatter",
        lambda data, *a, **k: scatters.append(data) or real_scatter(data, *a, **k),
    )
    big = np.ones(300_000)
    with Parallel(backend="dask", batch_size=1) as parallel:
        for _ in range(3):
            assert parallel(delayed(tasks.array_sum)(big, x) for x in range(3)) == [
                300_000.0 + x for x in range(3)
            ]
    assert len(scatters) == 1


def test_address_gives_a_client_of_its_own(dask_client: Any) -> None:
    address = dask_client.scheduler.address
    results = Parallel(backend="dask", address=address)(delayed(tasks.work)(x) for x in range(5))
    assert results == [tasks.work(x) for x in range(5)]
    assert distributed.get_client() is dask_client  # forklift's own client never became current
    clients = dask_client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.clients))
    deadline = time.monotonic() + 10
    while clients > 2 and time.monotonic() < deadline:  # ours and the scheduler's own
        time.sleep(0.05)
        clients = dask_client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.clients))
    assert clients <= 2  # the call closed the client it made


@pytest.mark.slow
@pytest.mark.usefixtures("dask_client")  # warmed-up dask: its process-wide threads exist
def test_closed_client_is_a_forklift_error(tmp_path: Path) -> None:
    cluster, client = start_dask_cluster(tmp_path)
    try:
        parallel = Parallel(backend="dask", client=client, n_jobs=2)
        client.close()
        with pytest.raises(ClusterConnectionError, match="client was closed"):
            parallel(delayed(tasks.work)(x) for x in range(3))
    finally:
        stop_dask_cluster(cluster, client)


def test_workers_share_one_memory_cache(dask_client: Any, tmp_path: Path) -> None:
    check_shared_cache(tmp_path, backend="dask", client=dask_client)


def test_nested_dask_call_inside_a_task_does_not_deadlock(dask_client: Any) -> None:
    # Both worker threads run outer tasks that wait on inner tasks: the outer tasks must
    # give their slots back while they wait.
    results = Parallel(backend="dask", n_jobs=2, batch_size=1, timeout=60)(
        delayed(tasks.nested_dask_sum)(4) for _ in range(2)
    )
    assert results == [14, 14]


def test_joblib_code_runs_on_dask_through_the_bridge(dask_client: Any) -> None:
    joblib = pytest.importorskip("joblib")
    from forklift.integrations.joblib import register

    register()
    with joblib.parallel_config(backend="forklift", forklift_backend="dask", client=dask_client):
        results = joblib.Parallel(n_jobs=2)(joblib.delayed(tasks.work)(x) for x in range(20))
    assert results == [tasks.work(x) for x in range(20)]


def test_callback_events_on_dask(dask_client: Any) -> None:
    from tests.progress.test_events import Recorder, check_sequence

    recorder = Recorder()
    out = Parallel(n_jobs=2, backend="dask", batch_size=3, reporters=[recorder])(
        delayed(tasks.work)(i) for i in range(40)
    )
    assert len(out) == 40
    check_sequence(recorder, 40)
