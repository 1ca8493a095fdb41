"""Backends side by side: throughput and per-task overhead on threads, processes, dask, ray.

Each engine starts on first use, in a row's warm-up round, so start-up is never timed, and
is shut down after this module's last row, not at exit, so that it does not run beside the
other modules' rows (see ``Scenario.teardown``). dask is a
LocalCluster of 2 single-threaded worker processes on loopback, ray a local instance with 2
CPUs - the same capacity as ``n_jobs=2`` on threads and processes.

* "tiny tasks": many calls that do nothing, automatic batching: tasks per second.
* "one task per batch": ``batch_size=1``, so every call is one hand-off; seconds / tasks is
  the overhead of one task on that backend.
* "dask vs joblib's dask backend": the same call through joblib's ``backend="dask"`` on the
  same cluster, the one baseline there is for a cluster backend.
"""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Scenario, time_call

_engines: dict[str, Any] = {}
_closers: dict[str, Callable[[], None]] = {}


def _close_engines() -> None:
    """Stop every engine started so far (each row's teardown; the next use restarts it)."""
    while _closers:
        name, close = _closers.popitem()
        _engines.pop(name, None)
        close()


atexit.register(_close_engines)


def tiny(x: int) -> int:
    return x


def _scratch_dir(engine: str) -> str:
    """A folder of the engine's own under /tmp (short: ray's socket paths must fit in 107
    characters), removed at exit after the engine has stopped."""
    folder = tempfile.mkdtemp(prefix=f"fl-{engine}-", dir="/tmp")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # atexit runs it last
    return folder


def _dask_client() -> Any:
    if "dask" not in _engines:
        import dask
        import distributed

        scratch = _scratch_dir("dask")
        dask.config.set({"temporary-directory": scratch})  # this benchmark process only
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            local_directory=scratch,
        )
        client = distributed.Client(cluster)
        _engines["dask"] = client

        def close() -> None:
            client.close()
            cluster.close()

        _closers["dask"] = close
    return _engines["dask"]


def _ray() -> Any:
    if "ray" not in _engines:
        import ray

        if not ray.is_initialized():
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=False,
                _temp_dir=_scratch_dir("ray"),
            )
            _closers["ray"] = ray.shutdown
        _engines["ray"] = ray
    return _engines["ray"]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _forklift_runner(backend: str, n: int, batch_size: int | str) -> Callable[[], float]:
    import forklift

    def run() -> float:
        params: dict[str, Any] = {}
        if backend == "dask":
            params["client"] = _dask_client()
        elif backend == "ray":
            _ray()
        return time_call(
            lambda: forklift.Parallel(n_jobs=2, backend=backend, batch_size=batch_size, **params)(
                forklift.delayed(tiny)(i) for i in range(n)
            )
        )

    return run


def _joblib_dask_runner(n: int, batch_size: int | str) -> Callable[[], float]:
    import joblib

    def run() -> float:
        client = _dask_client()

        def call() -> None:
            with joblib.parallel_config(backend="dask", client=client):
                joblib.Parallel(n_jobs=2, batch_size=batch_size)(
                    joblib.delayed(tiny)(i) for i in range(n)
                )

        return time_call(call)

    return run


def scenarios(quick: bool) -> list[Scenario]:
    n_tiny = 500 if quick else 20_000
    n_single = 20 if quick else 300
    repeats = 1 if quick else 5
    backends = ["threading", "loky"]
    backends += [
        name for name, module in (("dask", "distributed"), ("ray", "ray")) if _installed(module)
    ]

    result = [
        Scenario(
            name=f"{n_tiny:,} tiny tasks, n_jobs=2, auto batches: per backend",
            runners={name: _forklift_runner(name, n_tiny, "auto") for name in backends},
            subject="dask",
            baseline="threading",
            repeats=repeats,
            note="throughput (tasks/s = tasks / median); ratio: dask over threads",
        ),
        Scenario(
            name=f"{n_single:,} tasks, batch_size=1: per-task overhead per backend",
            runners={name: _forklift_runner(name, n_single, 1) for name in backends},
            subject="ray",
            baseline="dask",
            repeats=repeats,
            note="median / tasks = overhead of one task; ratio: ray over dask",
        ),
    ]
    if "dask" in backends and _installed("joblib"):
        result.append(
            Scenario(
                name=f"{n_single:,} tasks, batch_size=1, dask: forklift vs joblib's dask backend",
                runners={
                    "forklift": _forklift_runner("dask", n_single, 1),
                    "joblib": _joblib_dask_runner(n_single, 1),
                },
                target=1.0,
                repeats=repeats,
            )
        )
        result.append(
            Scenario(
                name=f"{n_tiny:,} tiny tasks, auto batches, dask: forklift vs joblib's dask",
                runners={
                    "forklift": _forklift_runner("dask", n_tiny, "auto"),
                    "joblib": _joblib_dask_runner(n_tiny, "auto"),
                },
                target=1.0,
                repeats=repeats,
            )
        )
    result[-1].teardown = _close_engines
    return result
