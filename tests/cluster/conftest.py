"""Real clusters on loopback, one per test module, for the dask and ray backend tests.

Each fixture starts its engine once per module and shuts it down after the module's last
test. The suite's leak guard snapshots threads and child processes at the start of every
test - after module fixtures are set up - so a cluster's own threads and processes are part
of every test's "before". Two things keep it that way:

* each fixture warms its engine up (a small call, and a call with an argument large enough to
  be shared) so the threads the client starts lazily exist before the first test;
* a test that makes the cluster start new processes (killing a worker makes the nanny start
  another) uses a cluster of its own, closed before the test ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.cluster import tasks

from forklift import Memory, Parallel, delayed


def warm_up(backend: str, **params: Any) -> None:
    big = np.ones(300_000)  # 2.4 MB: large enough to be shared
    Parallel(n_jobs=2, backend=backend, batch_size=1, **params)(
        delayed(tasks.size_of)(value) for value in [big, big, b"x", b"y"]
    )


def start_dask_cluster(directory: Path, **cluster_options: Any) -> tuple[Any, Any]:
    """A LocalCluster with 2 single-threaded worker processes on 127.0.0.1, and its client."""
    distributed = pytest.importorskip("distributed")
    import dask

    # Scratch space in the given folder, not in the session's temp dir (the leak guard).
    with dask.config.set({"temporary-directory": str(directory)}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=":0",
            local_directory=str(directory),
            **cluster_options,
        )
    client = distributed.Client(cluster)
    return cluster, client


def stop_dask_cluster(cluster: Any, client: Any) -> None:
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def dask_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    cluster, client = start_dask_cluster(tmp_path_factory.mktemp("dask"))
    try:
        warm_up("dask", client=client)
        yield client
    finally:
        stop_dask_cluster(cluster, client)


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # pragma: no cover - someone else's ray; do not shut it down
        pytest.skip("a ray instance is already running in this process")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        # Keep ray's workers alive between tests: a worker started mid-test is a new child.
        _system_config={"kill_idle_workers_interval_ms": 0},
    )
    try:
        warm_up("ray")
        # Start more workers than the 2 CPUs: ray starts a new worker whenever a task finds
        # none idle (e.g. while the last call's workers are still being handed back), and a
        # process started mid-test counts as a leak. Four half-CPU tasks at once make four.
        Parallel(n_jobs=4, backend="ray", batch_size=1, remote_args={"num_cpus": 0.5})(
            delayed(time.sleep)(0.5) for _ in range(4)
        )
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def marker_dir(tmp_path: Path) -> Path:
    """A folder tasks write a file into when they start, to see which tasks ran."""
    directory = tmp_path / "started"
    directory.mkdir()
    os.chmod(directory, 0o777)
    return directory


def runs(counter: Path) -> list[int]:
    return sorted(int(line) for line in counter.read_text().split()) if counter.exists() else []


def check_shared_cache(tmp_path: Path, **parallel: Any) -> None:
    """A cached function called inside cluster tasks: one cache folder shared by the workers.

    The cache's concurrency rules must hold across cluster workers as across local
    processes: workers missing the same key together compute it once (tasks 0 and 1 run
    together on the two workers), and what any worker stored is a hit everywhere - in other
    workers and in the caller.
    """
    memory = Memory(tmp_path / "cache", verbose=0)
    cached = memory.cache(tasks.counted_square, ignore=["counter"])
    counter = tmp_path / "runs.txt"
    xs = [1, 1, 2, 2, 1, 2, 3, 3]
    results = Parallel(batch_size=1, **parallel)(delayed(cached)(x, str(counter)) for x in xs)
    assert results == [x * x for x in xs]
    assert runs(counter) == [1, 2, 3]  # one computation per key, though workers raced
    again = Parallel(batch_size=1, **parallel)(delayed(cached)(x, str(counter)) for x in xs)
    assert again == results
    assert runs(counter) == [1, 2, 3]
    assert cached(3, str(counter)) == 9 and runs(counter) == [1, 2, 3]
