"""How a call is set up: one backend per call, built-in backends on the public base class,
``n_jobs`` checked once and read as a plain int."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy
import pytest

from forklift import Parallel, ParallelBackendBase, delayed, register_parallel_backend
from forklift._support.cpus import cpu_count, workers_for_n_jobs
from forklift.config import resolve_settings
from forklift.parallel.backends.multiprocessing import MultiprocessingBackend
from forklift.parallel.backends.processes import ProcessBackend
from forklift.parallel.backends.sequential import SequentialBackend
from forklift.parallel.backends.threads import ThreadingBackend

BUILT_IN = [SequentialBackend, ThreadingBackend, ProcessBackend, MultiprocessingBackend]


class CountedThreads(ThreadingBackend):
    """Threads that count how many backends were made."""

    made: ClassVar[list[CountedThreads]] = []

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        CountedThreads.made.append(self)


@pytest.fixture
def counted() -> list[CountedThreads]:
    CountedThreads.made.clear()
    register_parallel_backend("counted-threads", CountedThreads)
    return CountedThreads.made


def test_a_parallel_makes_one_backend_for_its_first_call(counted: list[CountedThreads]) -> None:
    parallel = Parallel(n_jobs=2, backend="counted-threads")
    assert len(counted) == 1  # made at once: a bad name or parameter fails here
    assert parallel(delayed(abs)(-i) for i in range(5)) == [0, 1, 2, 3, 4]
    assert len(counted) == 1  # the first call used it
    assert parallel(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]
    assert len(counted) == 2  # each later call gets a fresh one


def test_a_with_block_uses_the_backend_made_with_the_parallel(
    counted: list[CountedThreads],
) -> None:
    with Parallel(n_jobs=2, backend="counted-threads") as parallel:
        parallel(delayed(abs)(-i) for i in range(3))
        parallel(delayed(abs)(-i) for i in range(3))
    assert len(counted) == 1


@pytest.mark.parametrize("backend_class", BUILT_IN, ids=lambda cls: cls.__name__)
def test_built_in_backends_live_by_the_public_base_class(backend_class: type) -> None:
    assert issubclass(backend_class, ParallelBackendBase)


@pytest.mark.parametrize("backend_class", BUILT_IN[1:], ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("n_jobs", [1, 3, -1, -2, -1000])
def test_local_backends_count_workers_by_the_one_rule(backend_class: type, n_jobs: int) -> None:
    assert backend_class().effective_n_jobs(n_jobs) == workers_for_n_jobs(n_jobs)


def test_the_n_jobs_rule() -> None:
    assert workers_for_n_jobs(-1) == cpu_count()
    assert workers_for_n_jobs(-3, capacity=2) == 1
    assert workers_for_n_jobs(5, capacity=2) == 5


def test_a_numpy_n_jobs_is_read_as_an_int_once_resolved() -> None:
    settings = resolve_settings(n_jobs=numpy.int64(2))
    assert type(settings.n_jobs) is int and settings.n_jobs == 2
    assert type(Parallel(n_jobs=numpy.int32(-1)).n_jobs) is int
