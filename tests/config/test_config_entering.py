"""What entering a parallel_config block checks and changes (joblib's behaviours)."""

from __future__ import annotations

import threading
import warnings

import pytest

from forklift import Parallel, delayed, parallel_config
from forklift.config import current_settings
from forklift.errors import ConfigurationError, UnknownBackendError


def thread_name(_: int) -> str:
    return threading.current_thread().name


def test_n_jobs_none_in_a_nested_block_resets_to_the_backends_default() -> None:
    with parallel_config(backend="threading", n_jobs=3):
        with parallel_config(n_jobs=None):
            assert current_settings().n_jobs is None
            assert current_settings().backend == "threading"
            # The threading backend's default is one worker: the calls run inline.
            names = Parallel()(delayed(thread_name)(i) for i in range(4))
            assert set(names) == {threading.current_thread().name}
        with parallel_config(verbose=0):  # n_jobs not given: inherited
            assert current_settings().n_jobs == 3


def test_an_unknown_backend_name_raises_when_the_block_is_entered() -> None:
    block = parallel_config(backend="no-such-backend")
    with pytest.raises(UnknownBackendError, match="Invalid backend: no-such-backend"):
        block.__enter__()
    assert current_settings().backend is None  # nothing left in force


def test_a_block_that_failed_to_enter_leaves_the_outer_settings() -> None:
    with parallel_config(backend="threading", n_jobs=2):
        with pytest.raises(UnknownBackendError), parallel_config(backend="nope"):
            pytest.fail("the block must not be entered")  # pragma: no cover
        assert (current_settings().backend, current_settings().n_jobs) == ("threading", 2)


@pytest.mark.parametrize(
    ("backend", "joblib_name"),
    [
        ("threading", "ThreadingBackend"),
        ("sequential", "SequentialBackend"),
        ("multiprocessing", "MultiprocessingBackend"),
    ],
)
def test_inner_max_num_threads_is_refused_by_backends_that_ignore_it(
    backend: str, joblib_name: str
) -> None:
    with (
        pytest.raises(
            ConfigurationError,
            match=f"{joblib_name} does not accept setting the inner_max_num_threads argument",
        ),
        parallel_config(backend=backend, inner_max_num_threads=1),
    ):
        pytest.fail("the block must not be entered")  # pragma: no cover


def test_inner_max_num_threads_is_accepted_by_the_process_pool() -> None:
    with parallel_config(backend="loky", inner_max_num_threads=1):
        assert current_settings().inner_max_num_threads == 1
    with parallel_config(inner_max_num_threads=1):  # the default backend is loky
        assert current_settings().inner_max_num_threads == 1


def nested_multiprocessing(x: int) -> tuple[list[int], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inner = Parallel(n_jobs=2, backend="multiprocessing")(
            delayed(abs)(-i) for i in range(x, x + 3)
        )
    return inner, [str(warning.message) for warning in caught]


def test_multiprocessing_nested_in_a_multiprocessing_worker_runs_sequentially() -> None:
    outcomes = Parallel(n_jobs=2, backend="multiprocessing")(
        delayed(nested_multiprocessing)(x) for x in range(2)
    )
    for x, (inner, messages) in enumerate(outcomes):
        assert inner == [x, x + 1, x + 2]
        assert any("cannot be nested, setting n_jobs=1" in message for message in messages)
