"""backend="ray" against a real local ray instance (2 CPUs), started once for this module."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.cluster import tasks
from tests.cluster.conftest import check_shared_cache

from forklift import Parallel, delayed, effective_n_jobs, parallel_config
from forklift.errors import ConfigurationError

pytestmark = pytest.mark.cluster
pytest.importorskip("ray")

RETURN_AS = ["list", "generator", "generator_unordered"]


def run(return_as: str, **parallel: Any) -> list[Any]:
    results = Parallel(return_as=return_as, **parallel)(
        delayed(tasks.work)(x, offset=3) for x in range(40)
    )
    results = list(results)
    return sorted(results) if return_as == "generator_unordered" else results


@pytest.mark.parametrize("return_as", RETURN_AS)
def test_same_results_as_threads(ray_instance: Any, return_as: str) -> None:
    expected = run("list", n_jobs=2, backend="threading")
    assert run(return_as, n_jobs=2, backend="ray") == expected
    assert run(return_as, backend="ray", batch_size=1) == expected


def test_n_jobs_maps_to_the_cluster(ray_instance: Any) -> None:
    with parallel_config(backend="ray"):
        assert effective_n_jobs() == 2  # n_jobs not set: the whole cluster
        assert effective_n_jobs(-1) == 2
        assert effective_n_jobs(5) == 5
        assert Parallel()(delayed(tasks.work)(x) for x in range(3)) == [
            tasks.work(x) for x in range(3)
        ]


def test_lambdas_and_closures_travel(ray_instance: Any) -> None:
    base = 10
    assert Parallel(backend="ray")(delayed(lambda x: x + base)(x) for x in range(4)) == [
        10,
        11,
        12,
        13,
    ]


def test_task_error_reraises_with_its_type(ray_instance: Any) -> None:
    with pytest.raises(tasks.TaskFailed, match="task 7 failed") as caught:
        Parallel(backend="ray", batch_size=2)(delayed(tasks.fail_on)(x, 7) for x in range(20))
    assert "fail_on" in str(caught.value.__cause__)


def test_large_array_is_put_once(ray_instance: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    puts: list[Any] = []
    real_put = ray_instance.put

    def counting_put(value: Any, *args: Any, **kwargs: Any) -> Any:
        puts.append(value)
        return real_put(value, *args, **kwargs)

    monkeypatch.setattr(ray_instance, "put", counting_put)
    big = np.arange(500_000, dtype=np.float64)  # 4 MB
    small = np.arange(10)
    results = Parallel(backend="ray", batch_size=1)(
        delayed(tasks.array_sum)(big if x % 2 else small, x) for x in range(12)
    )
    assert results == [tasks.array_sum(big if x % 2 else small, x) for x in range(12)]
    assert len(puts) == 1 and puts[0] is big

    puts.clear()
    for params in ({"scatter": False}, {"scatter_threshold": "10M"}):
        results = Parallel(backend="ray", batch_size=1, **params)(
            delayed(tasks.array_sum)(big, x) for x in range(3)
        )
        assert results == [tasks.array_sum(big, x) for x in range(3)]
    assert puts == []

    # Keyword arguments are shared too; a with-block shares across its calls.
    with Parallel(backend="ray", batch_size=1) as parallel:
        for _ in range(2):
            assert parallel(delayed(tasks.array_sum)(array=big, x=x) for x in range(3)) == [
                tasks.array_sum(big, x) for x in range(3)
            ]
    assert len(puts) == 1


def test_error_cancels_pending_work(ray_instance: Any, marker_dir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(tasks.TaskFailed):
        Parallel(backend="ray", batch_size=1, pre_dispatch="all")(
            delayed(tasks.fail_first_else_slow)(x, 1.0, str(marker_dir)) for x in range(12)
        )
    assert time.monotonic() - started < 5
    time.sleep(1.5)
    # Only tasks running when the error came started (see the dask test), not the others.
    assert len(list(marker_dir.iterdir())) <= 3


def test_bad_parameters() -> None:
    with pytest.raises(ConfigurationError, match="does not take"):
        Parallel(backend="ray", no_such_option=1)
    with pytest.raises(ConfigurationError, match="remote_args"):
        Parallel(backend="ray", remote_args=3)


def test_remote_args_reach_ray(ray_instance: Any) -> None:
    # Each task asks for both CPUs: they still all run, one at a time.
    results = Parallel(backend="ray", batch_size=1, remote_args={"num_cpus": 2})(
        delayed(tasks.work)(x) for x in range(4)
    )
    assert results == [tasks.work(x) for x in range(4)]
    with pytest.raises(ConfigurationError, match="task options"):
        Parallel(backend="ray", remote_args={"no_such_option": 1})(
            delayed(tasks.work)(x) for x in range(2)
        )


def test_workers_share_one_memory_cache(ray_instance: Any, tmp_path: Path) -> None:
    check_shared_cache(tmp_path, backend="ray")


def test_callback_events_on_ray(ray_instance: Any) -> None:
    from tests.progress.test_events import Recorder, check_sequence

    recorder = Recorder()
    out = Parallel(n_jobs=2, backend="ray", batch_size=3, reporters=[recorder])(
        delayed(tasks.work)(i) for i in range(40)
    )
    assert len(out) == 40
    check_sequence(recorder, 40)
