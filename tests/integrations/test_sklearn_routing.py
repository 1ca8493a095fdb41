"""scikit-learn (through joblib) runs on the backend a forklift.parallel_config block names,
with no register() call: entering the block routes joblib to forklift."""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Any

import psutil
import pytest

import forklift
from forklift import parallel_config
from forklift.parallel.backends.base import Batch, BatchOutcome
from forklift.parallel.backends.threads import ThreadingBackend

joblib = pytest.importorskip("joblib")
sklearn_datasets = pytest.importorskip("sklearn.datasets")
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402


class CountingThreads(ThreadingBackend):
    """forklift's real threading backend, counting the batches handed to it."""

    submitted = 0

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        type(self).submitted += 1
        return super().submit(batch)


@pytest.fixture(autouse=True)
def counting_backend() -> None:
    forklift.register_parallel_backend("counting-threads", CountingThreads)
    CountingThreads.submitted = 0


def data() -> tuple[Any, Any]:
    return sklearn_datasets.make_classification(n_samples=60, n_features=5, random_state=0)


def pid_scorer(estimator: Any, X: Any, y: Any) -> float:
    return float(os.getpid())


def test_cross_val_score_runs_on_the_configured_forklift_backend() -> None:
    X, y = data()
    expected = cross_val_score(LogisticRegression(), X, y, cv=3)  # n_jobs=None: inline
    assert CountingThreads.submitted == 0
    with parallel_config(backend="counting-threads"):
        scores = cross_val_score(LogisticRegression(), X, y, cv=3, n_jobs=2)
    assert list(scores) == list(expected)
    assert CountingThreads.submitted > 0


def test_a_random_forest_with_n_jobs_2_runs_on_forklift() -> None:
    # The forest asks joblib for threads (prefer="threads"); a backend the block names wins,
    # as with joblib's own parallel_config.
    X, y = data()
    with parallel_config(backend="counting-threads"):
        forest = RandomForestClassifier(n_estimators=8, n_jobs=2, random_state=0).fit(X, y)
    assert CountingThreads.submitted > 0
    assert forest.score(X, y) > 0.8


def test_the_work_runs_in_forklifts_worker_processes() -> None:
    X, y = data()
    with parallel_config(backend="loky", n_jobs=2):
        pids = {
            int(pid)
            for pid in cross_val_score(LogisticRegression(), X, y, cv=4, scoring=pid_scorer)
        }
    assert os.getpid() not in pids
    for pid in pids:
        command = " ".join(psutil.Process(pid).cmdline())
        assert "forklift.pool" in command and "loky" not in command


def test_a_block_naming_no_backend_passes_n_jobs_and_keeps_joblibs_backends() -> None:
    with parallel_config(n_jobs=2):
        backend, n_jobs = joblib.parallel.get_active_backend()
    assert n_jobs == 2
    assert type(backend).__name__ == "LokyBackend"  # joblib keeps its own backends


def test_a_block_naming_no_backend_passes_its_prefer_hint_on() -> None:
    with parallel_config(prefer="threads"):
        backend, _ = joblib.parallel.get_active_backend()
    assert type(backend).__name__ == "ThreadingBackend"


def test_a_block_naming_a_forklift_backend_instance_routes_to_it() -> None:
    X, y = data()
    with parallel_config(backend=CountingThreads(), n_jobs=2):
        cross_val_score(LogisticRegression(), X, y, cv=3)
    assert CountingThreads.submitted > 0


def test_joblib_is_left_alone_once_the_block_ends() -> None:
    with parallel_config(backend="counting-threads", n_jobs=2):
        inside, _ = joblib.parallel.get_active_backend()
    outside, _ = joblib.parallel.get_active_backend()
    assert type(inside).__name__ == "ForkliftJoblibBackend"
    assert type(outside).__name__ == "LokyBackend"


def test_a_backend_registered_with_joblib_only_is_found_by_name() -> None:
    joblib.register_parallel_backend("joblib-only-threads", joblib.parallel.ThreadingBackend)
    results = forklift.Parallel(n_jobs=2, backend="joblib-only-threads")(
        forklift.delayed(abs)(-i) for i in range(5)
    )
    assert results == [0, 1, 2, 3, 4]


def test_a_joblib_style_backend_named_by_the_block_goes_to_joblib_as_it_is() -> None:
    backend = joblib.parallel.ThreadingBackend()
    with parallel_config(backend=backend, n_jobs=2):
        active, n_jobs = joblib.parallel.get_active_backend()
    assert active is backend
    assert n_jobs == 2


def test_the_older_parallel_backend_spelling_routes_too() -> None:
    # The seed tutorials' spelling: "control the backend ... using parallel_backend".
    X, y = data()
    with forklift.parallel_backend("counting-threads", n_jobs=2):
        scores = cross_val_score(LogisticRegression(), X, y, cv=3)
    assert len(scores) == 3
    assert CountingThreads.submitted > 0
