"""joblib - and scikit-learn's n_jobs - on forklift's backends (forklift.integrations.joblib)."""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Any

import pytest

import forklift
from forklift.parallel.backends.base import Batch, BatchOutcome
from forklift.parallel.backends.threads import ThreadingBackend

joblib = pytest.importorskip("joblib")
bridge = pytest.importorskip("forklift.integrations.joblib")


class Boom(Exception):
    pass


def square(x: int) -> int:
    return x * x


def where(x: int) -> tuple[int, int]:
    return (x, os.getpid())


def explode(x: int) -> int:
    if x == 3:
        raise Boom("three")
    return x


class CountingBackend(ThreadingBackend):
    """A real forklift threading backend that counts the batches it is handed."""

    submitted = 0

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        type(self).submitted += 1
        return super().submit(batch)


@pytest.fixture(autouse=True)
def registered() -> None:
    bridge.register()
    forklift.register_parallel_backend("counting-threads", CountingBackend)


def test_joblib_batches_run_on_forklift_backends() -> None:
    CountingBackend.submitted = 0
    with joblib.parallel_config(backend="forklift", forklift_backend="counting-threads"):
        results = joblib.Parallel(n_jobs=2)(joblib.delayed(square)(i) for i in range(50))
    assert results == [i * i for i in range(50)]
    assert CountingBackend.submitted > 0


def test_default_is_forklifts_process_pool() -> None:
    with joblib.parallel_config(backend="forklift"):
        results = joblib.Parallel(n_jobs=2)(joblib.delayed(where)(i) for i in range(6))
    assert [x for x, _ in results] == list(range(6))
    assert os.getpid() not in {pid for _, pid in results}


@pytest.mark.parametrize("return_as", ["list", "generator", "generator_unordered"])
def test_return_as(return_as: str) -> None:
    with joblib.parallel_config(backend="forklift", forklift_backend="threading"):
        results = joblib.Parallel(n_jobs=2, return_as=return_as, batch_size=3)(
            joblib.delayed(square)(i) for i in range(20)
        )
        results = list(results)
    assert sorted(results) == [i * i for i in range(20)]


def test_task_error_reraises_with_its_type() -> None:
    for backend in ("threading", "loky"):
        with (
            joblib.parallel_config(backend="forklift", forklift_backend=backend),
            pytest.raises(Boom, match="three"),
        ):
            joblib.Parallel(n_jobs=2)(joblib.delayed(explode)(i) for i in range(10))


def test_n_jobs_one_runs_inline() -> None:
    with joblib.parallel_config(backend="forklift"):
        assert joblib.Parallel(n_jobs=1)(joblib.delayed(where)(i) for i in range(3)) == [
            (i, os.getpid()) for i in range(3)
        ]


@pytest.mark.slow
def test_scikit_learn_cross_val_score_and_grid_search() -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    X, y = datasets.load_iris(return_X_y=True)
    model = DecisionTreeClassifier(random_state=0)
    expected = cross_val_score(model, X, y, cv=4, n_jobs=1)
    CountingBackend.submitted = 0
    with joblib.parallel_config(backend="forklift", forklift_backend="counting-threads"):
        scores = cross_val_score(model, X, y, cv=4, n_jobs=2)
    assert list(scores) == list(expected)
    assert CountingBackend.submitted > 0

    with joblib.parallel_config(backend="forklift"):  # forklift's process pool
        scores = cross_val_score(model, X, y, cv=4, n_jobs=2)
        search = GridSearchCV(
            LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=3, n_jobs=2
        ).fit(X, y)
    assert list(scores) == list(expected)
    assert search.best_params_["C"] in (0.1, 1.0)
    reference = GridSearchCV(
        LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=3, n_jobs=1
    ).fit(X, y)
    assert search.best_params_ == reference.best_params_


def test_unknown_forklift_backend_is_an_error() -> None:
    with (
        pytest.raises(forklift.errors.UnknownBackendError),
        joblib.parallel_config(backend="forklift", forklift_backend="no-such-backend"),
    ):
        joblib.Parallel(n_jobs=2)(joblib.delayed(square)(i) for i in range(2))


def test_bridge_is_the_only_joblib_importer(tmp_path: Any) -> None:
    import subprocess
    import sys

    code = (
        "import sys, forklift; "
        "forklift.Parallel(n_jobs=2, backend='threading')(forklift.delayed(abs)(-1) for _ in "
        "range(3)); print('joblib' in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert completed.stdout.strip() == "False"
