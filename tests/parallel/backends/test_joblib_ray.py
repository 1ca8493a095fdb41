"""ray's joblib backend (ray.util.joblib) under forklift's Parallel, through the adapter, on a
local ray instance this module starts and shuts down.

ray's backend is joblib's multiprocessing backend on a pool of ray actors; with one worker
it falls back to running inline, as in joblib, so the instance gets 2 CPUs for 2 actors.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

import forklift
from forklift import Parallel, delayed, parallel_config
from forklift.config import current_settings
from forklift.parallel.selection import select_backend

pytestmark = pytest.mark.cluster
ray = pytest.importorskip("ray")
ray_joblib = pytest.importorskip("ray.util.joblib")
ray_backend = pytest.importorskip("ray.util.joblib.ray_backend")


class Failed(Exception):
    pass


def fail_on_two(x: int) -> int:
    if x == 2:
        raise Failed("two")
    return x


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    if ray.is_initialized():  # pragma: no cover - someone else's ray; do not shut it down
        pytest.skip("a ray instance is already running in this process")
    from joblib.externals.loky.backend import resource_tracker
    from joblib.pool import PicklingPool

    resource_tracker.ensure_running()  # joblib's pool helper lives as long as this process
    # ray's backend rebases joblib's PicklingPool onto ray's Pool for good (in joblib too);
    # put it back afterwards, or joblib's own multiprocessing backend would start a ray.
    original_bases = PicklingPool.__bases__
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _system_config={"kill_idle_workers_interval_ms": 0},
    )
    try:
        ray_joblib.register_ray()
        forklift.register_parallel_backend("ray-joblib", ray_backend.RayBackend)
        Parallel(n_jobs=2, backend="ray-joblib")(delayed(abs)(i) for i in range(4))  # warm up
        yield
    finally:
        PicklingPool.__bases__ = original_bases
        ray.shutdown()
        time.sleep(1)  # let ray's processes go before the leak guard looks


def test_rays_joblib_backend_runs_the_calls_on_ray_actors() -> None:
    results = Parallel(n_jobs=2, backend="ray-joblib")(
        delayed(lambda x: (x * x, os.getpid()))(x) for x in range(8)
    )
    assert [square for square, _ in results] == [x * x for x in range(8)]
    assert os.getpid() not in {pid for _, pid in results}


def test_an_instance_of_rays_joblib_backend_works_too() -> None:
    results = Parallel(n_jobs=2, backend=ray_backend.RayBackend())(
        delayed(abs)(-x) for x in range(5)
    )
    assert results == [0, 1, 2, 3, 4]


def test_a_task_error_reraises_with_its_type() -> None:
    with pytest.raises(Failed, match="two"):
        Parallel(n_jobs=2, backend="ray-joblib", batch_size=1)(
            delayed(fail_on_two)(x) for x in range(4)
        )


def test_forklifts_ray_name_stays_forklifts_own_backend() -> None:
    # register_ray() put "ray" in joblib's registry; in forklift "ray" is forklift's backend.
    with parallel_config(backend="ray"):
        backend = select_backend(current_settings(), explicit_backend=False).backend
    assert type(backend).__module__ == "forklift.parallel.backends.ray"


def test_a_parallel_config_block_naming_it_routes_too() -> None:
    with parallel_config(backend="ray-joblib", n_jobs=2):
        results = Parallel()(delayed(lambda x: x + 1)(x) for x in range(4))
    assert results == [1, 2, 3, 4]
