"""Abandoned calls release the shared pool at once, and say how many tasks they cancelled.

A call is abandoned when its consumer stops wanting its results: its ``with`` block ends,
its generator is closed or deleted, a task's error ends it, or the consumer's own code
raises. Its queued tasks must go at once and its running ones stop within a short grace, so
that other live generators and later calls on the shared pool start without waiting for
work nobody wants. Real workers, real sleeps: each abandoned task would run a minute.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from forklift import Parallel, delayed
from forklift.errors import ParallelStateError, TasksCancelledWarning

LONG = 60.0  # an abandoned task that ran to its end would take this long
PROMPT = 15.0  # generous on a loaded 2-core machine; far below LONG
KINDS = ["generator", "generator_unordered"]
MODES = ["live", "close", "delete", "with_block_ends", "task_error", "consumer_error"]


def nap(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def fail_fast() -> None:
    raise ValueError("the first task failed")


def long_calls(first: Any = None) -> Iterator[Any]:
    if first is not None:
        yield first
    for index in range(10):
        yield delayed(nap)(LONG, index)


def consume_and_fail(results: Callable[[], Iterator[Any]]) -> None:
    for _ in results():
        raise RuntimeError("the consumer's own code failed")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("second_kind", KINDS)
@pytest.mark.parametrize("first_kind", KINDS)
def test_two_generators_on_the_shared_pool(first_kind: str, second_kind: str, mode: str) -> None:
    """A second live generator gets the pool's workers as soon as the first is abandoned,
    and two live ones both deliver everything."""
    if mode == "live":
        first = Parallel(n_jobs=2, return_as=first_kind)(
            delayed(nap)(0.3, index) for index in range(4)
        )
        second = Parallel(n_jobs=2, return_as=second_kind)(
            delayed(nap)(0.05, index) for index in range(6)
        )
        got_first, got_second = [], []
        for a, b in zip(first, second, strict=False):  # interleaved consumption
            got_first.append(a)
            got_second.append(b)
        got_first.extend(first)
        got_second.extend(second)
        assert sorted(got_first) == list(range(4))
        assert sorted(got_second) == list(range(6))
        return

    def make_second() -> Iterator[int]:
        results: Iterator[int] = Parallel(n_jobs=2, return_as=second_kind)(
            delayed(nap)(0.05, index) for index in range(6)
        )
        return results

    # A task's error is reported by raising it; joblib does not warn then, nor does forklift.
    expected = (
        contextlib.nullcontext()
        if mode == "task_error"
        else pytest.warns(TasksCancelledWarning, match=r"\d+ tasks? .*cancelled")
    )
    with expected:
        if mode == "with_block_ends":
            with Parallel(n_jobs=2, return_as=first_kind) as parallel:
                first = parallel(long_calls())
                time.sleep(1.0)  # its tasks run on both workers now
                second = make_second()  # queued behind them
            started = time.monotonic()
            got = list(second)
            elapsed = time.monotonic() - started
            del first  # its warning comes when the abandoned generator goes
        elif mode in ("close", "delete"):
            first = Parallel(n_jobs=2, return_as=first_kind)(long_calls())
            time.sleep(1.0)
            second = make_second()
            started = time.monotonic()
            if mode == "close":
                first.close()
            else:
                del first
            got = list(second)
            elapsed = time.monotonic() - started
        elif mode == "task_error":
            first = Parallel(n_jobs=2, return_as=first_kind, batch_size=1)(
                long_calls(delayed(fail_fast)())
            )
            time.sleep(1.0)
            second = make_second()
            started = time.monotonic()
            with pytest.raises(ValueError, match="the first task failed"):
                list(first)
            got = list(second)
            elapsed = time.monotonic() - started
        else:  # consumer_error: the consumer's own code raises inside its loop
            seconds: list[Iterator[int]] = []

            def first_results() -> Iterator[int]:
                results: Iterator[int] = Parallel(n_jobs=2, return_as=first_kind)(
                    long_calls(delayed(nap)(1.0, -1))
                )
                seconds.append(make_second())  # created while the first one runs
                return results

            started = time.monotonic()
            with pytest.raises(RuntimeError, match="consumer's own code"):
                consume_and_fail(first_results)
            got = list(seconds.pop())
            elapsed = time.monotonic() - started
    assert sorted(got) == list(range(6))
    assert elapsed < PROMPT, f"the live generator waited {elapsed:.1f}s for abandoned work"
    # And a later, unrelated call starts at once too.
    started = time.monotonic()
    assert Parallel(n_jobs=2)(delayed(abs)(-index) for index in range(4)) == [0, 1, 2, 3]
    assert time.monotonic() - started < PROMPT


def test_with_block_end_cancels_its_generator_and_frees_the_pool() -> None:
    """The issue's case: ten long tasks, the block ends with their generator unconsumed;
    reading it afterwards says why its results are gone."""
    with Parallel(n_jobs=2, return_as="generator") as parallel:
        abandoned = parallel(long_calls())
        time.sleep(1.0)
    started = time.monotonic()
    assert Parallel(n_jobs=2)(delayed(abs)(-index) for index in range(4)) == [0, 1, 2, 3]
    assert time.monotonic() - started < PROMPT
    with pytest.raises(ParallelStateError, match="with-block of its Parallel ended"):
        next(abandoned)


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_closing_early_warns_how_many_tasks_were_cancelled(backend: str) -> None:
    release = threading.Event()
    results = Parallel(
        n_jobs=2, backend=backend, return_as="generator", batch_size=1, pre_dispatch=4
    )(delayed(wait_or_nap)(release if backend == "threading" else None) for _ in range(10))
    time.sleep(0.5)
    try:
        with pytest.warns(TasksCancelledWarning) as caught:
            results.close()
    finally:
        release.set()
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("4 tasks"), message  # the four sent; the six never pulled
    assert caught[0].filename == __file__  # points at the caller's line, not forklift's


def wait_or_nap(release: threading.Event | None) -> None:
    if release is None:
        time.sleep(LONG)
    else:
        release.wait(LONG)


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_no_warning_when_nothing_was_cancelled(backend: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = Parallel(n_jobs=2, backend=backend, return_as="generator")(
            delayed(abs)(-index) for index in range(3)
        )
        assert next(results) == 0
        time.sleep(0.5)  # the other two finish; their results are simply not read
        results.close()
        finished = Parallel(n_jobs=2, backend=backend, return_as="generator")(
            delayed(abs)(-index) for index in range(3)
        )
        assert list(finished) == [0, 1, 2]
        del finished


GC_ON_THE_MANAGER_THREAD = textwrap.dedent(
    """
    import gc, time
    from forklift import Parallel, delayed

    class CollectWhenPickled:
        # The pool pickles this (the initializer's arguments) on its manager thread, under
        # its lock, for each new worker: a collection runs there, as any allocation could.
        def __reduce__(self):
            gc.collect()
            return (CollectWhenPickled, ())

    def setup(marker):
        pass

    gc.disable()  # only the collection forced on the manager thread finds the cycle
    options = dict(n_jobs=2, initializer=setup, initargs=(CollectWhenPickled(),))
    results = Parallel(return_as="generator", **options)(
        delayed(time.sleep)(60) for _ in range(10)
    )
    cycle = [results]
    cycle.append(cycle)
    del results, cycle  # unreachable: only a collection can close the generator
    time.sleep(2)
    print(Parallel(**options)(delayed(abs)(-i) for i in range(4)), flush=True)
    print("exiting", flush=True)
    """
)


def test_generator_collected_on_the_pool_manager_thread_does_not_deadlock() -> None:
    """The garbage collector may finalize an abandoned generator on the pool's own manager
    thread while it holds the pool's lock; the abort must not wait for that lock, later
    calls must run, and the interpreter must exit."""
    with subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", GC_ON_THE_MANAGER_THREAD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            output, errors = child.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            _kill_tree(child.pid)
            output, errors = child.communicate()
            pytest.fail(f"the script hung (deadlock); output: {output!r}, stderr: {errors!r}")
    assert output.splitlines() == ["[0, 1, 2, 3]", "exiting"], errors
    assert child.returncode == 0, errors


def _kill_tree(pid: int) -> None:
    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    for process in [*parent.children(recursive=True), parent]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
