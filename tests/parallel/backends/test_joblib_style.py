"""Backends written for joblib's backend interface, run by forklift's Parallel (adapter)."""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

import pytest

import forklift
from forklift import Parallel, delayed, parallel_config
from forklift.errors import ConfigurationError

joblib_parallel = pytest.importorskip("joblib.parallel")
joblib_backends = pytest.importorskip("joblib._parallel_backends")


@pytest.fixture(scope="module", autouse=True)
def loky_resource_tracker() -> None:
    """joblib's process backends start loky's resource tracker, a helper that lives as long
    as this process: start it before the leak guard's first snapshot."""
    from joblib.externals.loky.backend import resource_tracker

    resource_tracker.ensure_running()


# Set at run time by a test: a forked worker inherits it, a spawned one imports it afresh.
MARKS: list[int] = []


def square(x: int) -> int:
    return x * x


def marks_seen(_: int) -> int:
    return len(MARKS)


def thread_name(_: int) -> str:
    return threading.current_thread().name


def fail_on_three(x: int) -> int:
    if x == 3:
        raise KeyError("three")
    return x


class PoolBackend(joblib_parallel.ParallelBackendBase):  # type: ignore[misc]
    """Written the way joblib's docs describe a backend: a subclass of its base class that
    runs batch callables on a thread pool and hands results back through the callback."""

    supports_retrieve_callback = True
    uses_threads = True
    supports_sharedmem = True
    configured_with: ClassVar[list[dict[str, Any]]] = []

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        return 2 if n_jobs is None or n_jobs < 0 else n_jobs

    def configure(self, n_jobs: int = 1, parallel: Any = None, **kwargs: Any) -> int:
        type(self).configured_with.append({"n_jobs": n_jobs, **kwargs})
        self.parallel = parallel
        self._executor = ThreadPoolExecutor(n_jobs, thread_name_prefix="joblib-style")
        return n_jobs

    def submit(self, func: Any, callback: Any = None) -> Future[Any]:
        future = self._executor.submit(func)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def retrieve_result_callback(self, out: Future[Any]) -> Any:
        return out.result()

    def terminate(self) -> None:
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=True)
            self._executor = None


class DuckBackend:
    """No joblib base class: only the methods joblib's Parallel calls, in the older style
    without a result callback (the caller blocks on ``retrieve_result``)."""

    supports_retrieve_callback = False
    uses_threads = True

    def __init__(self) -> None:
        self.submitted = 0
        self.terminated = False

    def effective_n_jobs(self, n_jobs: int) -> int:
        return max(1, n_jobs)

    def configure(self, n_jobs: int = 1, parallel: Any = None, **kwargs: Any) -> int:
        self._executor = ThreadPoolExecutor(n_jobs, thread_name_prefix="duck")
        return n_jobs

    def submit(self, func: Any, callback: Any = None) -> Future[Any]:
        self.submitted += 1
        return self._executor.submit(func)

    def retrieve_result(self, out: Future[Any], timeout: float | None = None) -> Any:
        return out.result(timeout=timeout)

    def terminate(self) -> None:
        self._executor.shutdown(wait=True)
        self.terminated = True


class _Job:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class FirstJobOnlyBackend:
    """No result callbacks, results read with a timeout; runs only the first job it is given
    and holds the others forever - as a backend whose pool an abort tore down would."""

    supports_retrieve_callback = False
    supports_timeout = True
    uses_threads = True

    def effective_n_jobs(self, n_jobs: int) -> int:
        return max(1, n_jobs)

    def configure(self, n_jobs: int = 1, parallel: Any = None, **kwargs: Any) -> int:
        self.started = False
        return n_jobs

    def submit(self, func: Any, callback: Any = None) -> _Job:
        job = _Job()
        if not self.started:
            self.started = True
            try:
                job.value = func()
            except BaseException as error:  # pragma: no cover - batches report errors
                job.error = error
            job.done.set()
        return job

    def retrieve_result(self, job: _Job, timeout: float | None = None) -> Any:
        if not job.done.wait(timeout):
            raise TimeoutError
        if job.error is not None:  # pragma: no cover
            raise job.error
        return job.value


def test_a_joblib_subclass_instance_runs_the_calls() -> None:
    PoolBackend.configured_with = []
    names = Parallel(n_jobs=2, backend=PoolBackend())(delayed(thread_name)(i) for i in range(6))
    assert all(name.startswith("joblib-style") for name in names)
    # configure got joblib's keyword arguments, max_nbytes in bytes as joblib passes it.
    (configured,) = PoolBackend.configured_with
    assert configured["n_jobs"] == 2
    assert configured["max_nbytes"] == 1024 * 1024
    assert configured["mmap_mode"] == "r"


def test_a_registered_joblib_class_is_usable_by_name_in_parallel_config() -> None:
    forklift.register_parallel_backend("joblib-style-pool", PoolBackend)
    with parallel_config(backend="joblib-style-pool", n_jobs=2):
        results = Parallel()(delayed(square)(i) for i in range(20))
        names = Parallel()(delayed(thread_name)(i) for i in range(4))
    assert results == [i * i for i in range(20)]
    assert all(name.startswith("joblib-style") for name in names)


def test_a_duck_typed_backend_without_result_callbacks() -> None:
    duck = DuckBackend()
    results = Parallel(n_jobs=2, backend=duck)(delayed(square)(i) for i in range(10))
    assert results == [i * i for i in range(10)]
    assert duck.submitted > 0
    assert duck.terminated


def test_a_task_error_keeps_its_type() -> None:
    with pytest.raises(KeyError, match="three"):
        Parallel(n_jobs=2, backend=PoolBackend(), batch_size=1)(
            delayed(fail_on_three)(i) for i in range(6)
        )


def test_joblibs_own_multiprocessing_backend_runs_lambdas_in_other_processes() -> None:
    backend = joblib_backends.MultiprocessingBackend()
    pids = Parallel(n_jobs=2, backend=backend)(delayed(lambda _: os.getpid())(i) for i in range(4))
    assert os.getpid() not in pids


def test_a_fallback_to_sequential_runs_inline() -> None:
    # joblib's multiprocessing backend answers configure(n_jobs=1) with FallbackToBackend.
    backend = joblib_backends.MultiprocessingBackend()
    pids = Parallel(n_jobs=1, backend=backend)(delayed(lambda _: os.getpid())(i) for i in range(3))
    assert pids == [os.getpid()] * 3


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork to compare"
)
def test_a_multiprocessing_context_is_a_backend_with_that_start_method() -> None:
    MARKS.append(1)
    try:
        forked = Parallel(n_jobs=2, backend=multiprocessing.get_context("fork"))(
            delayed(marks_seen)(i) for i in range(2)
        )
        spawned = Parallel(n_jobs=2, backend=multiprocessing.get_context("spawn"))(
            delayed(marks_seen)(i) for i in range(2)
        )
    finally:
        MARKS.clear()
    assert forked == [1, 1]  # a forked worker inherits the list as it was
    assert spawned == [0, 0]  # a spawned one imported this module afresh


def test_an_object_that_is_no_backend_is_refused_clearly() -> None:
    with pytest.raises(ConfigurationError, match="joblib-style backend"):
        Parallel(n_jobs=2, backend=object())


def test_result_threads_end_when_a_run_is_aborted() -> None:
    # The first task fails; the batches held by the backend never complete. The threads
    # waiting for them must end anyway (the leak guard fails the test otherwise).
    with pytest.raises(KeyError, match="three"):
        Parallel(n_jobs=2, backend=FirstJobOnlyBackend(), batch_size=1)(
            delayed(fail_on_three)(x) for x in [3, 0, 1, 2]
        )


class SwitchedImports(forklift.ParallelBackendBase):
    """A joblib backend whose author switched the import to forklift's base class: its own
    configure() marks it as written for joblib's interface."""

    supports_retrieve_callback = True
    uses_threads = True

    def configure(self, n_jobs: int = 1, parallel: Any = None, **kwargs: Any) -> int:
        self._executor = ThreadPoolExecutor(n_jobs, thread_name_prefix="switched")
        return n_jobs

    def submit(self, func: Any, callback: Any = None) -> Future[Any]:  # type: ignore[override]
        future = self._executor.submit(func)
        future.add_done_callback(callback)
        return future

    def retrieve_result_callback(self, out: Future[Any]) -> Any:
        return out.result()

    def terminate(self) -> None:
        self._executor.shutdown(wait=True)


def test_a_joblib_style_subclass_of_forklifts_base_class() -> None:
    names = Parallel(n_jobs=2, backend=SwitchedImports())(delayed(thread_name)(i) for i in range(4))
    assert all(name.startswith("switched") for name in names)
