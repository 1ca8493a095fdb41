"""The events a run emits, for every backend and return_as, and how reporters are shielded."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from typing import Any

import pytest

from forklift.errors import ConfigurationError, TasksCancelledWarning
from forklift.parallel.api import Parallel, delayed
from forklift.progress.events import (
    BatchCompleted,
    BatchDispatched,
    BatchFailed,
    Event,
    Heartbeat,
    RunFinished,
    RunStarted,
)
from forklift.progress.hub import EventHub

BACKENDS = ["sequential", "threading", "loky", "multiprocessing"]
RETURN_AS = ["list", "generator", "generator_unordered"]


def square(x: int) -> int:
    return x * x


def fail_at(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"bad input {x}")
    time.sleep(0.001)
    return x


class Recorder:
    """A reporter that keeps every event and the thread it arrived in."""

    def __init__(self, needs_task_times: bool = False) -> None:
        self.events: list[Event] = []
        self.threads: set[int] = set()
        self.needs_task_times = needs_task_times

    def handle(self, event: Event) -> None:
        self.events.append(event)
        self.threads.add(threading.get_ident())

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


def run(backend: str, return_as: str, n: int = 40, **kwargs: Any) -> tuple[list[int], Recorder]:
    recorder = Recorder(needs_task_times=kwargs.pop("timed", False))
    n_jobs = 1 if backend == "sequential" else 2
    output = Parallel(
        n_jobs=n_jobs, backend=backend, return_as=return_as, reporters=[recorder], **kwargs
    )(delayed(square)(i) for i in range(n))
    return list(output), recorder


def check_sequence(recorder: Recorder, n: int) -> None:
    events = recorder.events
    assert isinstance(events[0], RunStarted)
    assert isinstance(events[-1], RunFinished)
    assert not events[-1].error and events[-1].reason == ""
    assert events[-1].n_completed == n and events[-1].total == n
    dispatched = {event.batch_index: event for event in recorder.of(BatchDispatched)}
    completed = recorder.of(BatchCompleted)
    assert sorted(dispatched) == sorted(event.batch_index for event in completed)
    assert sum(event.n_tasks for event in completed) == n
    # Each batch is dispatched before it completes; counts only grow.
    seen: set[int] = set()
    for event in events:
        if isinstance(event, BatchDispatched):
            seen.add(event.batch_index)
        elif isinstance(event, BatchCompleted):
            assert event.batch_index in seen
            assert event.finished >= event.started > 0
            assert event.duration >= 0
            assert event.worker.split(":")[0].isdigit()
    counts = [event.n_completed for event in completed]
    assert counts == sorted(counts) and counts[-1] == n
    first_tasks = sorted((event.first_task, event.n_tasks) for event in completed)
    position = 0
    for first, size in first_tasks:  # batches tile the input exactly
        assert first == position
        position += size
    assert recorder.threads == {threading.get_ident()}  # delivered in the caller's thread


@pytest.mark.parametrize("return_as", RETURN_AS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_and_return_as_emits_a_full_sequence(backend: str, return_as: str) -> None:
    output, recorder = run(backend, return_as, batch_size=3)
    assert sorted(output) == [i * i for i in range(40)]
    check_sequence(recorder, 40)
    started = recorder.events[0]
    assert isinstance(started, RunStarted)
    assert started.backend_name == backend
    assert started.n_workers == (1 if backend == "sequential" else 2)
    assert started.expected_total is None  # a generator has no len()
    assert all(event.task_ends is None for event in recorder.of(BatchCompleted))


def test_expected_total_comes_from_len() -> None:
    recorder = Recorder()
    Parallel(n_jobs=2, backend="threading", reporters=[recorder])(
        [delayed(square)(i) for i in range(25)]
    )
    started = recorder.events[0]
    assert isinstance(started, RunStarted) and started.expected_total == 25


@pytest.mark.parametrize("backend", BACKENDS)
def test_task_times_and_names_only_when_a_reporter_asks(backend: str) -> None:
    _, recorder = run(backend, "list", batch_size=4, timed=True)
    for event in recorder.of(BatchCompleted):
        assert event.task_ends is not None and len(event.task_ends) == event.n_tasks
        assert list(event.task_ends) == sorted(event.task_ends)
        assert event.started <= event.task_ends[0] and event.task_ends[-1] == event.finished
        assert event.task_names == ("square",) * event.n_tasks or all(
            name.endswith("square") for name in event.task_names or ()
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failure_emits_batch_failed_then_run_finished(backend: str) -> None:
    recorder = Recorder(needs_task_times=True)
    n_jobs = 1 if backend == "sequential" else 2
    with pytest.raises(ValueError, match="bad input 13"):
        Parallel(n_jobs=n_jobs, backend=backend, batch_size=4, reporters=[recorder])(
            delayed(fail_at)(i, 13) for i in range(40)
        )
    failures = recorder.of(BatchFailed)
    assert len(failures) == 1
    failure = failures[0]
    assert failure.failed_task == 13 and failure.batch_index == 3 and failure.first_task == 12
    assert failure.error_type == "ValueError" and failure.error == "bad input 13"
    assert failure.task_name.endswith("fail_at")
    assert failure.task_ends is not None and len(failure.task_ends) == 2  # task 12, then 13
    assert failure.worker
    finished = recorder.events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.error and finished.reason == "ValueError: bad input 13"
    assert recorder.events.index(failure) < len(recorder.events) - 1


def test_closing_a_generator_early_finishes_the_run_as_closed() -> None:
    recorder = Recorder()
    output = Parallel(n_jobs=2, backend="threading", return_as="generator", reporters=[recorder])(
        delayed(square)(i) for i in range(1000)
    )
    assert next(output) == 0
    with warnings.catch_warnings():  # how many tasks were cancelled depends on timing
        warnings.simplefilter("ignore", TasksCancelledWarning)
        output.close()
    finished = recorder.events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.error and finished.reason == "closed early"


def test_plain_callables_and_a_single_reporter_are_accepted() -> None:
    seen: list[Event] = []
    Parallel(n_jobs=2, backend="threading", reporters=seen.append)(
        delayed(square)(i) for i in range(5)
    )
    assert isinstance(seen[0], RunStarted) and isinstance(seen[-1], RunFinished)
    recorder = Recorder()
    Parallel(n_jobs=1, reporters=recorder)(delayed(square)(i) for i in range(5))
    assert isinstance(recorder.events[-1], RunFinished)


def test_a_reporter_that_raises_is_logged_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("reporter bug")

    recorder = Recorder()
    with caplog.at_level(logging.DEBUG, logger="forklift.progress"):
        result = Parallel(n_jobs=2, backend="threading", reporters=[broken, recorder])(
            delayed(square)(i) for i in range(20)
        )
    assert result == [i * i for i in range(20)]
    check_sequence(recorder, 20)  # the reporter after the broken one got everything
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert "reporter bug" in (errors[0].exc_text or "")  # first failure: with its traceback
    assert "raised while handling RunStarted" in errors[0].getMessage()
    # It raised on every event, all of which the recorder also saw.
    assert f"raised {len(recorder.events)} times during the run" in errors[-1].getMessage()
    assert len(errors) == 2  # one traceback, one summary; not one line per event


def test_a_reporter_keyboard_interrupt_is_not_swallowed() -> None:
    class Interrupting:
        def handle(self, event: Event) -> None:
            if isinstance(event, BatchCompleted):
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Parallel(n_jobs=2, backend="threading", reporters=[Interrupting()])(
            delayed(square)(i) for i in range(20)
        )


@pytest.mark.parametrize("bad", [42, [42], ["not a reporter"]])
def test_bad_reporters_are_refused_where_written(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="reporter"):
        Parallel(reporters=bad)


def test_an_empty_hub_is_falsy_and_costs_nothing() -> None:
    hub = EventHub([])
    assert not hub and not hub.needs_task_times
    assert EventHub([Recorder(needs_task_times=True)]).needs_task_times


def test_overrides_keep_the_new_parameters() -> None:
    recorder = Recorder()
    parallel = Parallel(n_jobs=2, backend="threading", reporters=[recorder])
    parallel(verbose=0)(delayed(square)(i) for i in range(3))
    assert isinstance(recorder.events[-1], RunFinished)


def test_heartbeats_come_while_a_long_task_runs() -> None:
    recorder = Recorder()
    Parallel(n_jobs=2, backend="threading", reporters=[recorder])(
        delayed(time.sleep)(1.3) for _ in range(1)
    )
    kinds = [type(event).__name__ for event in recorder.events]
    beats = recorder.of(Heartbeat)
    assert len(beats) >= 1
    assert kinds.index("Heartbeat") > kinds.index("BatchDispatched")
    assert kinds.index("Heartbeat") < kinds.index("BatchCompleted")
    assert beats[0].n_completed == 0 and beats[0].n_dispatched == 1
    assert beats[0].elapsed >= 0.9


def test_no_reporters_no_heartbeats_and_timeouts_still_work() -> None:
    from forklift.errors import ParallelTimeoutError

    recorder = Recorder()
    with pytest.raises(ParallelTimeoutError):
        Parallel(n_jobs=2, backend="threading", timeout=0.3, reporters=[recorder])(
            delayed(time.sleep)(1.0) for _ in range(2)
        )
    finished = recorder.events[-1]
    assert isinstance(finished, RunFinished) and finished.reason.startswith("ParallelTimeoutError")
