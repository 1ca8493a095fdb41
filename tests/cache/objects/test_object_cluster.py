"""One cache for a whole cluster: dask workers (and separate processes standing in for other
machines) that share nothing but a real S3 server on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cache.objects import tasks
from tests.cache.objects.conftest import S3Server
from tests.cluster.conftest import start_dask_cluster, stop_dask_cluster, warm_up

from forklift import Memory, Parallel, delayed

pytestmark = pytest.mark.cluster


def keys(server: S3Server, url: str) -> list[str]:
    bucket = url.removeprefix("s3://").split("/")[0]
    listed = server.boto().list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def runs(counter: Path) -> list[int]:
    return sorted(int(line) for line in counter.read_text().split()) if counter.exists() else []


@pytest.fixture(scope="module")
def dask_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip("distributed")
    cluster, client = start_dask_cluster(tmp_path_factory.mktemp("dask"))
    try:
        warm_up("dask", client=client)
        yield client
    finally:
        stop_dask_cluster(cluster, client)


def test_racing_workers_compute_once_and_then_hit(
    s3_server: S3Server, s3_url: str, s3_options: Any, dask_client: Any, tmp_path: Path
) -> None:
    memory = Memory(s3_url, verbose=0, backend_options=s3_options)
    cached = memory.cache(tasks.counted_square, ignore=["counter", "seconds"])
    counter = tmp_path / "runs.txt"
    xs = [1, 1, 2, 2, 1, 2, 3, 3]
    # Tasks 0 and 1 (both x=1) start together on the two workers and race for the key.
    results = Parallel(n_jobs=2, backend="dask", client=dask_client, batch_size=1)(
        delayed(cached)(x, str(counter), 0.3) for x in xs
    )
    assert results == [x * x for x in xs]
    assert runs(counter) == [1, 2, 3]
    again = Parallel(n_jobs=2, backend="dask", client=dask_client, batch_size=1)(
        delayed(cached)(x, str(counter)) for x in xs
    )
    assert again == results and runs(counter) == [1, 2, 3]
    assert cached(3, str(counter)) == 9 and runs(counter) == [1, 2, 3]  # and in the caller
    stored = keys(s3_server, s3_url)
    assert len([key for key in stored if key.endswith(".fkl")]) == 3
    assert not [key for key in stored if "/.leases/" in key]  # every lease released


def test_a_dask_worker_killed_mid_write_leaves_no_entry(
    s3_server: S3Server, s3_url: str, tmp_path: Path, dask_client: Any
) -> None:
    # Its own cluster: the nanny starts a new worker process after the kill (the module's
    # client is asked for only so that the threads dask keeps per process exist already).
    options = {"storage_options": s3_server.storage_options(), "lease_seconds": 5.0}
    cached = Memory(s3_url, verbose=0, backend_options=options).cache(
        tasks.dies_while_storing, ignore=["marker"]
    )
    marker = tmp_path / "died-once"
    cluster, client = start_dask_cluster(tmp_path / "dask")
    try:
        future = client.submit(cached, 4, str(marker), pure=False)
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the worker dies as it stores; dask runs the task again elsewhere,
        stored = keys(s3_server, s3_url)  # where it waits for the dead worker's lease
        assert not [key for key in stored if key.endswith(".fkl")]
        assert [key for key in stored if "/.leases/" in key]
        assert future.result(timeout=60) == 40
    finally:
        stop_dask_cluster(cluster, client)
    assert len([key for key in keys(s3_server, s3_url) if key.endswith(".fkl")]) == 1


DIES_WHILE_STORING = textwrap.dedent(
    """
    import json, sys
    from forklift import Memory
    from tests.cache.objects import tasks
    url, options, marker = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    memory = Memory(url, verbose=0, backend_options=options)
    print(memory.cache(tasks.dies_while_storing, ignore=["marker"])(4, marker))
    """
)


def test_a_worker_killed_mid_write_leaves_no_entry(
    s3_server: S3Server, s3_url: str, tmp_path: Path
) -> None:
    options = {"storage_options": s3_server.storage_options(), "lease_seconds": 1.0}
    marker = str(tmp_path / "died-once")

    def machine() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", DIES_WHILE_STORING, s3_url, json.dumps(options), marker],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=Path(__file__).parents[3],
        )

    died = machine()
    assert died.returncode == -signal.SIGKILL, died.stderr
    stored = keys(s3_server, s3_url)
    assert not [key for key in stored if key.endswith(".fkl")]  # nothing half-written shows
    assert [key for key in stored if "/.leases/" in key]  # the dead holder's lease is left
    survivor = machine()  # waits out the lease (1 s), computes, stores
    assert survivor.returncode == 0, survivor.stderr
    assert survivor.stdout.split() == ["40"]
    assert len([key for key in keys(s3_server, s3_url) if key.endswith(".fkl")]) == 1


CHECKPOINTED = textwrap.dedent(
    """
    import json, os, signal, sys
    from forklift import Memory, Parallel, delayed
    url, options, log = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]

    def work(i):
        with open(log, "a") as file:
            file.write(f"{i}\\n")
        if i == 12 and os.environ.get("MACHINE") == "a":
            os.kill(os.getpid(), signal.SIGKILL)  # machine A is lost mid-run
        return i * i

    memory = Memory(url, verbose=0, backend_options=options)
    results = Parallel(n_jobs=2, backend="threading", batch_size=1, checkpoint=memory)(
        delayed(work)(i) for i in range(30)
    )
    print("RESULTS", results == [i * i for i in range(30)])
    """
)


def test_a_checkpointed_run_resumes_on_another_machine(
    s3_server: S3Server, s3_url: str, tmp_path: Path
) -> None:
    # The tasks in flight on A leave leases; B takes them over after lease_seconds.
    options = json.dumps({"storage_options": s3_server.storage_options(), "lease_seconds": 1})
    log = tmp_path / "computed.txt"

    def machine(name: str) -> subprocess.CompletedProcess[str]:
        home = tmp_path / name  # nothing on disk is shared between the "machines"
        home.mkdir()
        return subprocess.run(
            [sys.executable, "-c", CHECKPOINTED, s3_url, options, str(log)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=home,
            env={**os.environ, "MACHINE": name, "TMPDIR": str(home), "HOME": str(home)},
        )

    first = machine("a")
    assert first.returncode == -signal.SIGKILL, first.stderr
    before = log.read_text().split()
    second = machine("b")
    assert "RESULTS True" in second.stdout, second.stderr
    rerun = log.read_text().split()[len(before) :]
    assert "12" in rerun
    assert len(set(rerun) & set(before)) <= 2  # only what was in flight when A died
    assert len(rerun) <= 30 - 8
