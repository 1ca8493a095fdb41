"""forklift's messages keep joblib's key phrase where joblib raises for the same mistake,
so code and test suites that match joblib's messages keep working."""

from __future__ import annotations

import threading

import pytest

from forklift import Parallel, delayed, parallel_config
from forklift.errors import ConfigurationError, ParallelStateError


def test_invalid_prefer() -> None:
    with pytest.raises(ValueError, match="prefer=gpu is not a valid backend hint"):
        Parallel(prefer="gpu")
    with pytest.raises(ValueError, match="prefer=gpu is not a valid backend hint"):
        parallel_config(prefer="gpu")


def test_invalid_require() -> None:
    with pytest.raises(ValueError, match="require=shared is not a valid backend constraint"):
        Parallel(require="shared")
    with pytest.raises(ValueError, match="require=shared is not a valid backend constraint"):
        parallel_config(require="shared")


def test_invalid_backend_name() -> None:
    with pytest.raises(ValueError, match=r"Invalid backend: threads, expected one of \["):
        Parallel(backend="threads")


def test_n_jobs_zero() -> None:
    with pytest.raises(ValueError, match="n_jobs == 0 in Parallel has no meaning"):
        Parallel(n_jobs=0)


def test_n_jobs_that_int_cannot_convert() -> None:
    with pytest.raises(ValueError, match="n_jobs could not be converted to int"):
        Parallel(n_jobs="many")  # type: ignore[arg-type]


def test_invalid_return_as() -> None:
    with pytest.raises(ValueError, match="Expected `return_as` parameter to be a string equal to"):
        Parallel(return_as="lists")  # type: ignore[arg-type]


def test_sharedmem_with_a_process_backend() -> None:
    with pytest.raises(ValueError, match="does not support shared memory"):
        Parallel(n_jobs=2, backend="loky", require="sharedmem")


def test_already_running() -> None:
    release = threading.Event()
    parallel = Parallel(n_jobs=2, backend="threading", return_as="generator")
    results = parallel(delayed(release.wait)(30) for _ in range(2))
    try:
        with pytest.raises(RuntimeError, match="This Parallel instance is already running"):
            parallel(delayed(abs)(i) for i in range(2))
    finally:
        release.set()
        assert list(results) == [True, True]


def test_the_errors_stay_forklifts() -> None:
    with pytest.raises(ConfigurationError):
        Parallel(prefer="gpu")
    assert issubclass(ParallelStateError, RuntimeError)
