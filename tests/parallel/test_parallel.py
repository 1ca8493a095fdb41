"""Parallel and delayed on the sequential and threading backends."""

from __future__ import annotations

import itertools
import threading
import time
import warnings
from collections.abc import Iterator

import pytest

from forklift import (
    Parallel,
    ParallelBackendBase,
    delayed,
    effective_n_jobs,
    parallel_config,
    register_parallel_backend,
)
from forklift._support.cpus import cpu_count
from forklift.errors import (
    ConfigurationError,
    InvalidTaskError,
    ParallelStateError,
    ParallelTimeoutError,
    TasksCancelledWarning,
    UnknownBackendError,
)
from forklift.parallel.backends.base import BackendCapabilities, run_batch

LOCAL_BACKENDS = ["sequential", "threading"]


def square(x: int) -> int:
    return x * x


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"bad value {x}")
    return x


class Counter:
    """Counts the items a generator hands out (thread-safe)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def calls(self, n: int | None = None, function: object = square) -> Iterator[object]:
        iterator = itertools.count() if n is None else iter(range(n))
        for i in iterator:
            with self._lock:
                self.count += 1
            yield delayed(function)(i)  # type: ignore[arg-type]


# -- results and ordering -------------------------------------------------------------------


@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
@pytest.mark.parametrize("n_jobs", [1, 2, -1])
def test_list_in_input_order(backend: str, n_jobs: int) -> None:
    out = Parallel(n_jobs=n_jobs, backend=backend)(delayed(square)(i) for i in range(100))
    assert out == [i * i for i in range(100)]


def test_default_is_one_job_and_runs_inline() -> None:
    caller = threading.get_ident()
    assert Parallel()(delayed(threading.get_ident)() for _ in range(3)) == [caller] * 3


def test_hand_written_triples_and_lists_work() -> None:
    tasks = [(square, (i,), {}) for i in range(5)] + [[pow, [2, 3], {}]]
    assert Parallel(n_jobs=2, backend="threading")(tasks) == [0, 1, 4, 9, 16, 8]


def test_keyword_arguments_travel() -> None:
    out = Parallel(n_jobs=2, backend="threading")(delayed(fail_on)(x=i, bad=-1) for i in range(4))
    assert out == [0, 1, 2, 3]


def test_empty_input() -> None:
    assert Parallel(n_jobs=2, backend="threading")([]) == []
    assert list(Parallel(n_jobs=2, backend="threading", return_as="generator")([])) == []


@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
def test_generator_is_lazy_and_ordered(backend: str) -> None:
    counter = Counter()
    results = Parallel(
        n_jobs=2, backend=backend, return_as="generator", batch_size=1, pre_dispatch=3
    )(counter.calls(50))
    # Work starts at the call, but only pre_dispatch batches are pulled ahead of the consumer.
    assert 1 <= counter.count <= 3
    assert next(results) == 0
    assert counter.count < 50
    assert list(results) == [i * i for i in range(1, 50)]


@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
def test_endless_generator_stops_when_consumer_stops(backend: str) -> None:
    counter = Counter()
    results = Parallel(
        n_jobs=2, backend=backend, return_as="generator", batch_size=1, pre_dispatch=4
    )(counter.calls(None))
    first = [next(results) for _ in range(10)]
    with warnings.catch_warnings():
        # Whether any sent task was still unfinished (and so cancelled, with a warning)
        # depends on timing; tests/parallel/test_abandoned_calls.py checks the warning.
        warnings.simplefilter("ignore", TasksCancelledWarning)
        results.close()
    assert first == [i * i for i in range(10)]
    pulled = counter.count
    assert pulled <= 10 + 4  # at most pre_dispatch batches beyond what was consumed
    time.sleep(0.05)
    assert counter.count == pulled


def slow_identity(x: float) -> float:
    time.sleep(x)
    return x


def test_generator_unordered_yields_in_completion_order() -> None:
    delays = [0.3, 0.0, 0.0, 0.0]
    out = list(
        Parallel(n_jobs=2, backend="threading", return_as="generator_unordered", batch_size=1)(
            delayed(slow_identity)(d) for d in delays
        )
    )
    assert sorted(out) == sorted(delays)
    assert out[-1] == 0.3


def test_generator_ordered_waits_for_the_slow_first_task() -> None:
    delays = [0.2, 0.0, 0.0, 0.0]
    out = list(
        Parallel(n_jobs=2, backend="threading", return_as="generator", batch_size=1)(
            delayed(slow_identity)(d) for d in delays
        )
    )
    assert out == delays


# -- dispatch limits and batching ------------------------------------------------------------


def test_pre_dispatch_limits_batches_in_flight() -> None:
    counter = Counter()
    gate = threading.Event()

    def wait_for_gate(x: int) -> int:
        gate.wait(5)
        return x

    results = Parallel(
        n_jobs=2, backend="threading", batch_size=1, pre_dispatch="n_jobs", return_as="generator"
    )(counter.calls(100, wait_for_gate))
    consumer = threading.Thread(target=lambda: next(results))
    consumer.start()
    time.sleep(0.2)
    assert counter.count == 2  # n_jobs batches of one: nothing more is pulled while blocked
    gate.set()
    consumer.join()
    assert list(results) == list(range(1, 100))


def test_pre_dispatch_all_pulls_everything_at_once() -> None:
    counter = Counter()
    results = Parallel(n_jobs=2, backend="threading", pre_dispatch="all", return_as="generator")(
        counter.calls(30)
    )
    next(results)
    assert counter.count == 30
    results.close()


@pytest.mark.parametrize(
    "bad", ["2 * workers", "__import__('os')", "", 0, -1, "n_jobs - 5", True, 1.5]
)
def test_malformed_pre_dispatch_is_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="pre_dispatch"):
        Parallel(n_jobs=2, backend="threading", pre_dispatch=bad)(  # type: ignore[arg-type]
            delayed(square)(i) for i in range(3)
        )


def test_fixed_batch_size_groups_calls() -> None:
    workers = Parallel(n_jobs=2, backend="threading", batch_size=5)(
        delayed(threading.get_ident)() for _ in range(20)
    )
    # Each group of five consecutive calls ran on one thread.
    for start in range(0, 20, 5):
        assert len(set(workers[start : start + 5])) == 1


@pytest.mark.parametrize("bad", [0, -2, "big", 2.5, True])
def test_bad_batch_size(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="batch_size"):
        Parallel(batch_size=bad)  # type: ignore[arg-type]


class RecordingBackend(ParallelBackendBase):
    """Runs batches inline and records their sizes."""

    name = "recording"
    capabilities = BackendCapabilities(shares_memory=True, batch_target_seconds=0.01)

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def submit(self, batch):  # type: ignore[no-untyped-def]
        from concurrent.futures import Future

        self.sizes.append(len(batch))
        future: Future[object] = Future()
        future.set_result(run_batch(batch))
        return future


def test_auto_batching_groups_tiny_tasks() -> None:
    backend = RecordingBackend()
    Parallel(n_jobs=2, backend=backend)(delayed(square)(i) for i in range(20_000))
    assert sum(backend.sizes) == 20_000
    assert backend.sizes[0] == 1
    assert max(backend.sizes) >= 256  # tiny tasks end up in large batches
    assert len(backend.sizes) < 200


def test_auto_batching_keeps_long_tasks_alone() -> None:
    backend = RecordingBackend()
    Parallel(n_jobs=2, backend=backend)(delayed(slow_identity)(0.02) for _ in range(8))
    assert backend.sizes == [1] * 8


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
def test_task_error_reraises_with_its_type_and_names_the_function(backend: str) -> None:
    with pytest.raises(ValueError, match="bad value 3") as caught:
        Parallel(n_jobs=2, backend=backend)(delayed(fail_on)(i, 3) for i in range(10))
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "fail_on" in notes and "task 3" in notes
    # The worker-side frames are in the traceback.
    assert any(frame.name == "fail_on" for frame in caught.traceback)


def test_first_error_stops_dispatch() -> None:
    counter = Counter()

    def explode(x: int) -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Parallel(n_jobs=2, backend="threading", batch_size=1)(counter.calls(None, explode))
    assert counter.count < 20  # an endless input stopped right after the failure


def test_error_from_the_input_iterable_propagates() -> None:
    def broken_input() -> Iterator[object]:
        yield delayed(square)(1)
        raise KeyError("input broke")

    with pytest.raises(KeyError, match="input broke"):
        Parallel(n_jobs=2, backend="threading")(broken_input())


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("not a call", "item 1 of the task iterable"),
        ((square, 1, {}), "args must be a tuple"),
        ((1, (), {}), "not callable"),
        ((square, ()), "not a \\(function, args, kwargs\\) triple"),
        (square, "not a \\(function, args, kwargs\\) triple"),
    ],
)
def test_items_that_are_not_calls_are_refused(item: object, message: str) -> None:
    with pytest.raises(InvalidTaskError, match=message):
        Parallel(n_jobs=2, backend="threading")([delayed(square)(1), item])


def test_calling_with_a_non_iterable() -> None:
    with pytest.raises(InvalidTaskError, match="iterable of delayed calls"):
        Parallel()(42)  # type: ignore[arg-type]


def test_delayed_refuses_non_callables() -> None:
    with pytest.raises(InvalidTaskError, match="delayed\\(\\) needs a callable"):
        delayed(42)  # type: ignore[arg-type]


def test_delayed_returns_the_triple_and_keeps_the_name() -> None:
    assert delayed(square)(3, k=1) == (square, (3,), {"k": 1})
    assert delayed(square).__name__ == "square"
    assert delayed(square).__wrapped__ is square


@pytest.mark.parametrize("bad", ["lists", None, 3])
def test_unknown_return_as(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="return_as must be one of"):
        Parallel(return_as=bad)  # type: ignore[arg-type]


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(UnknownBackendError, match=r"Invalid backend: threadin, .*threading"):
        Parallel(backend="threadin")


@pytest.mark.parametrize("bad", [0, -1, "soon"])
def test_bad_timeout(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        Parallel(timeout=bad)  # type: ignore[arg-type]


def test_timeout_bounds_the_whole_call() -> None:
    started = time.perf_counter()
    with pytest.raises(TimeoutError) as caught:
        Parallel(n_jobs=2, backend="threading", timeout=0.3, batch_size=1)(
            delayed(slow_identity)(0.1) for _ in range(40)
        )
    assert isinstance(caught.value, ParallelTimeoutError)
    assert "timeout=0.3" in str(caught.value)
    assert time.perf_counter() - started < 1.5


# -- backend choice ------------------------------------------------------------------------


def thread_name() -> str:
    return threading.current_thread().name


def test_prefer_threads_picks_threads() -> None:
    names = Parallel(n_jobs=2, prefer="threads")(delayed(thread_name)() for _ in range(4))
    assert all(name.startswith("forklift-thread") for name in names)


def test_require_sharedmem_picks_threads_and_sees_shared_objects() -> None:
    shared: list[int] = []
    Parallel(n_jobs=2, require="sharedmem")(delayed(shared.append)(i) for i in range(10))
    assert sorted(shared) == list(range(10))


def test_require_sharedmem_with_an_explicit_process_backend_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="sharedmem"):
        Parallel(n_jobs=2, backend="loky", require="sharedmem")


def test_config_block_chooses_the_backend() -> None:
    with parallel_config(backend="threading", n_jobs=2):
        names = Parallel()(delayed(thread_name)() for _ in range(4))
    assert all(name.startswith("forklift-thread") for name in names)


def test_effective_n_jobs() -> None:
    assert effective_n_jobs(1) == 1
    assert effective_n_jobs(-1) == cpu_count()
    assert effective_n_jobs(-2) == max(cpu_count() - 1, 1)
    assert effective_n_jobs(-100) == 1
    with pytest.raises(ConfigurationError, match="n_jobs == 0"):
        effective_n_jobs(0)


def test_registered_backend_and_instances() -> None:
    class Inline(ParallelBackendBase):
        name = "inline-test"

        def submit(self, batch):  # type: ignore[no-untyped-def]
            from concurrent.futures import Future

            future: Future[object] = Future()
            future.set_result(run_batch(batch))
            return future

    register_parallel_backend("inline-test", Inline)
    assert Parallel(n_jobs=2, backend="inline-test")(delayed(square)(i) for i in range(4)) == [
        0,
        1,
        4,
        9,
    ]
    assert Parallel(n_jobs=2, backend=Inline())(delayed(square)(i) for i in range(3)) == [0, 1, 4]
    with pytest.raises(ConfigurationError, match="callable"):
        register_parallel_backend("broken", 42)  # type: ignore[arg-type]


def test_backend_must_be_a_name_or_instance() -> None:
    with pytest.raises(ConfigurationError, match="backend must be"):
        Parallel(n_jobs=2, backend=object())(delayed(square)(1) for _ in range(1))  # type: ignore[arg-type]


def nested_backend_name() -> str:
    from forklift.config import current_settings

    return f"{current_settings().worker_of}/{current_settings().backend}"


def test_nested_parallel_in_a_thread_worker_runs_sequentially() -> None:
    def inner() -> list[str]:
        return Parallel(n_jobs=2)(delayed(thread_name)() for _ in range(3))

    outer = Parallel(n_jobs=2, backend="threading")(delayed(inner)() for _ in range(2))
    for names in outer:
        assert len(set(names)) == 1 and names[0].startswith("forklift-thread")
    assert (
        Parallel(n_jobs=2, backend="threading")(delayed(nested_backend_name)() for _ in range(2))
        == ["threading/sequential"] * 2
    )


# -- lifecycle -----------------------------------------------------------------------------


def test_context_manager_reuses_its_threads() -> None:
    with Parallel(n_jobs=2, backend="threading", batch_size=1) as parallel:
        first = set(parallel(delayed(threading.get_ident)() for _ in range(20)))
        second = set(parallel(delayed(threading.get_ident)() for _ in range(20)))
    assert len(first | second) <= 2  # the same two threads served both calls


def test_calling_a_closed_parallel_is_an_error() -> None:
    with Parallel(n_jobs=2, backend="threading") as parallel:
        parallel(delayed(square)(i) for i in range(3))
    with pytest.raises(ParallelStateError, match="closed"):
        parallel(delayed(square)(i) for i in range(3))


def test_calling_a_running_parallel_is_an_error() -> None:
    parallel = Parallel(n_jobs=2, backend="threading", return_as="generator")
    running = parallel(delayed(square)(i) for i in range(10))
    next(running)
    with pytest.raises(ParallelStateError, match="already running"):
        list(parallel(delayed(square)(i) for i in range(3)))
    assert list(running) == [i * i for i in range(1, 10)]
    assert list(parallel(delayed(square)(i) for i in range(3))) == [0, 1, 4]


def test_a_plain_parallel_can_be_called_many_times() -> None:
    parallel = Parallel(n_jobs=2, backend="threading")
    for _ in range(3):
        assert parallel(delayed(square)(i) for i in range(5)) == [0, 1, 4, 9, 16]


def test_calling_with_options_returns_a_configured_parallel_sharing_workers() -> None:
    # Seed 001 writes: with Parallel(n_jobs=k) as parallel: parallel(n_jobs=k, verbose=1)(...)
    with Parallel(n_jobs=2, backend="threading", batch_size=1) as parallel:
        idents = parallel(n_jobs=2, verbose=0)(delayed(threading.get_ident)() for _ in range(20))
        more = parallel(delayed(threading.get_ident)() for _ in range(20))
    assert len(set(idents) | set(more)) <= 2
    with pytest.raises(ConfigurationError, match="not to its call"):
        Parallel()([], n_jobs=2)
    with pytest.raises(InvalidTaskError):
        Parallel()()


def test_verbose_prints_joblib_style_lines_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    Parallel(n_jobs=2, backend="threading", verbose=10, batch_size=1)(
        delayed(square)(i) for i in range(5)
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert (
        lines[0]
        == "[Parallel(n_jobs=2)]: Using backend ThreadingBackend with 2 concurrent workers."
    )
    assert lines[-1].startswith("[Parallel(n_jobs=2)]: Done   5 out of   5 | elapsed:")
    assert lines[-1].endswith("finished")


def test_verbose_cadence_grows_with_verbosity(capsys: pytest.CaptureFixture[str]) -> None:
    counts = {}
    for verbose in (1, 5, 11):
        Parallel(n_jobs=2, backend="threading", verbose=verbose, batch_size=1)(
            delayed(square)(i) for i in range(200)
        )
        counts[verbose] = len(capsys.readouterr().err.splitlines())
    assert counts[1] < counts[5] < counts[11]
    assert counts[11] >= 200


def test_verbose_zero_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    Parallel(n_jobs=2, backend="threading")(delayed(square)(i) for i in range(5))
    assert capsys.readouterr().err == ""


def test_generator_starts_working_before_the_first_next() -> None:
    started = threading.Event()

    def mark(x: int) -> int:
        started.set()
        return x

    results = Parallel(n_jobs=2, backend="threading", return_as="generator")(
        delayed(mark)(i) for i in range(4)
    )
    assert started.wait(2), "no task ran before the consumer asked for a result"
    assert list(results) == [0, 1, 2, 3]


def test_abandoned_generator_releases_its_workers() -> None:
    results = Parallel(n_jobs=2, backend="threading", return_as="generator")(
        delayed(slow_identity)(0.01) for _ in range(100)
    )
    next(results)
    with pytest.warns(TasksCancelledWarning, match="cancelled"):
        del results  # garbage collection closes the run; the leak fixture checks the threads
