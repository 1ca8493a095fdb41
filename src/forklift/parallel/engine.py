"""The engine: pull calls lazily, batch them, hand batches to a backend, collect results.

One run, as :func:`execute` drives it in the caller's thread::

    user iterable --take--> Batch --backend.submit--> Future[BatchOutcome]
          ^                                                  | done callback
          | refill up to max_in_flight                       v
          +------------------ caller waits on <-- completion queue (batch index)
                                                             |
                     results in input order (or as completed) v
                                                          consumer

* Input is pulled only to keep ``max_in_flight`` batches busy, so a generator of unknown or
  endless length works, and nothing more is pulled once the consumer stops.
* The first task error stops dispatch, aborts the backend's queued and running work, and
  re-raises the error with its own type, the worker's traceback chained as ``__cause__`` and
  a note naming the failing function.
* ``timeout`` bounds the whole run; ``KeyboardInterrupt`` while waiting aborts the same way.

The engine knows backends only through the :class:`~forklift.parallel.backends.base.Backend`
protocol and never looks inside one. It executes a :class:`~forklift.parallel.plan.RunPlan` and
decides nothing a user chose; its helpers each hold one concern: :mod:`.tasks` (pulling and
checking calls, with the garbage collector paused for large pulls), :mod:`.batching` (batch
sizes), :mod:`.resilience` and :mod:`.retries` (what a failure leads to), :mod:`.task_clock`
(``task_timeout``), :mod:`.ordering` (results in input order), :mod:`.run_events` (events and
re-raised errors), :mod:`.abandonment` (what closing a run early cancelled).
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import CancelledError, Future
from functools import partial
from typing import Any

from forklift.errors import (
    ParallelTimeoutError,
    TaskTimeoutError,
)
from forklift.parallel.abandonment import (
    count_unfinished,
    stopped_under_the_run,
    warn_cancelled,
)
from forklift.parallel.backends.base import Batch, BatchOutcome, Call, describe_call
from forklift.parallel.batching import BatchSizer, batches_in_flight, tail_batch_size
from forklift.parallel.failures import summarise
from forklift.parallel.ordering import ResultOrder
from forklift.parallel.plan import RunPlan
from forklift.parallel.resilience import CheckpointedCalls, Decision, FailureTracker
from forklift.parallel.retries import RetryQueue
from forklift.parallel.run_events import (
    Progress,
    batch_completed,
    batch_dispatched,
    failure_event,
    heartbeat,
    run_finished,
    run_started,
    task_error,
)
from forklift.parallel.task_clock import TaskClock
from forklift.parallel.tasks import TaskSource
from forklift.progress.hub import EventHub

__all__ = ["HEARTBEAT_SECONDS", "RunPlan", "TaskSource", "execute"]

logger = logging.getLogger("forklift.parallel")

# How often reporters hear from a run in which nothing completes (see Heartbeat).
HEARTBEAT_SECONDS = 1.0


def execute(
    plan: RunPlan, tasks: Iterable[Any], *, consumer_inside: bool = False
) -> Iterator[list[Any]]:
    """Run ``tasks`` per ``plan``; yield lists of results (in input order if ``plan.ordered``).

    The first item is always an empty list, yielded once the first batches are dispatched:
    taking it starts the work without waiting for any result. Closing the generator early
    (the consumer stopped) aborts what is in flight and warns how many tasks that cancelled.
    ``consumer_inside``: the lists go to forklift's own loop (``return_as="list"``), not to
    user code, so a garbage collector pause (see :mod:`.tasks`) may last across yields.
    """
    run = _Run(plan, tasks)
    failed = True
    abandoned = False
    reason = "closed early"
    try:
        run.start()
        run.fill()
        if not consumer_inside:
            run.source.end_pause()
        yield []
        while True:
            if run.results.ready:
                if not consumer_inside:
                    run.source.end_pause()
                yield from run.results.take()
                continue
            if not (run.in_flight or run.retries):
                break
            index = run.wait()
            if index is not None:
                run.complete(index)
            run.fill()
        failed = False
        reason = ""
    except GeneratorExit:
        abandoned = True
        raise
    except BaseException as error:
        message = str(error)
        reason = f"{type(error).__name__}: {message}" if message else type(error).__name__
        raise
    finally:
        run.close(failed, reason, abandoned)


class _Run:
    """The state of one run; :func:`execute` drives it. Results leave through ``results``."""

    def __init__(self, plan: RunPlan, tasks: Iterable[Any]) -> None:
        self.plan = plan
        self.source = TaskSource(tasks)
        self.backend = plan.backend
        self.resilience = plan.resilience
        self.tracker = FailureTracker(plan.resilience)
        self.checkpoint = (
            None
            if plan.resilience.checkpoint is None
            else CheckpointedCalls(plan.resilience.checkpoint)
        )
        self.completions: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.in_flight: dict[int, tuple[Batch, Future[BatchOutcome]]] = {}
        task_timeout = plan.resilience.task_timeout
        self.clock = None if task_timeout is None else TaskClock(task_timeout)
        self.retries = RetryQueue()
        self.results = ResultOrder(plan.ordered)
        self.n_batches = self.n_completed = 0
        self.sizer = BatchSizer(self.backend.capabilities.batch_target_seconds)
        self.started = time.perf_counter()
        self.deadline = None if plan.timeout is None else self.started + plan.timeout
        self.last_event = self.started
        # Events cost nothing when nobody listens: every emission is guarded by `hub`.
        self.hub = EventHub(plan.reporters)
        self.timed = self.hub.needs_task_times
        # Tasks that run in this process (threads, inline) never run under a collector pause.
        self.tasks_run_here = not self.backend.capabilities.uses_processes

    # -- dispatch ----------------------------------------------------------------------------
    def start(self) -> None:
        if self.hub:
            plan = self.plan
            self.hub.emit(
                run_started(plan.backend, plan.n_workers, plan.n_jobs, plan.expected_total)
            )

    def _has_room(self) -> bool:
        limit = self.plan.max_in_flight
        if self.plan.batch_size is None:  # automatic batches: queue ahead only when it pays
            sizer = self.sizer
            ending = self.source.remaining is not None
            limit = batches_in_flight(
                limit, self.plan.n_workers, sizer.seconds_per_task, sizer.target_seconds, ending
            )
        return limit is None or len(self.in_flight) < limit

    def fill(self) -> None:
        """Dispatch retries that are due, then new calls, while there is room in flight."""
        now = time.perf_counter()
        while self.retries and self._has_room():
            due = self.retries.pop_due(now)
            if due is None:
                break
            self.submit(due[0], [due[1]])
        source = self.source
        while not source.exhausted and self._has_room():
            calls = source.take(self._next_size())
            if not calls:
                break
            first = source.n_taken - len(calls)
            if self.checkpoint is None:
                self.submit(first, calls)
            else:
                self._submit_or_restore(first, calls)

    def _next_size(self) -> int:
        if self.plan.batch_size is not None:
            return self.plan.batch_size
        size = self.sizer.size
        if size > 1:  # one call a batch: nothing to split, so nothing to pull ahead
            n_workers = self.plan.n_workers
            remaining = self.source.look_ahead(size * n_workers)
            if remaining is not None:
                size = tail_batch_size(size, remaining, n_workers, self.sizer.seconds_per_task)
        return size

    def _submit_or_restore(self, first: int, calls: list[Call]) -> None:
        """Restore stored results in the caller; send the rest, wrapped so they are stored."""
        assert self.checkpoint is not None
        run: list[Call] = []
        run_start = first
        for position, call in enumerate(calls):
            wrapped, stored = self.checkpoint.wrap(call)
            if stored:
                if run:
                    self.submit(run_start, run)
                    run = []
                self.n_completed += 1
                self.results.add(first + position, [self.checkpoint.restore(wrapped)])
                run_start = first + position + 1
            else:
                run.append(wrapped)
        if run:
            self.submit(run_start, run)

    def submit(self, first_task: int, calls: list[Call]) -> None:
        batch = Batch(
            self.n_batches,
            first_task,
            calls,
            self.plan.worker_settings,
            self.timed,
            seed=self.resilience.seed,
        )
        self.n_batches += 1
        if self.hub:
            self.hub.emit(batch_dispatched(batch, self._progress()))
        if self.tasks_run_here:
            self.source.end_pause()
        future = self.backend.submit(batch)
        self.in_flight[batch.index] = (batch, future)
        future.add_done_callback(partial(_announce, self.completions, batch.index))

    def _progress(self) -> Progress:
        source = self.source
        return Progress(
            self.n_completed,
            source.n_taken,
            source.n_taken if source.exhausted else None,
            time.perf_counter() - self.started,
        )

    # -- waiting -----------------------------------------------------------------------------
    def wait(self) -> int | None:
        """The index of a completed batch, or None when woken for something else (a retry
        is due, a task ran out of time, a heartbeat was sent)."""
        wake_at = self.deadline
        retry_at = self.retries.next_ready_at()
        if retry_at is not None:
            wake_at = _earliest(wake_at, retry_at)
        clock = self.clock
        if clock is not None and self.in_flight:
            futures = {index: entry[1] for index, entry in self.in_flight.items()}
            wake_at = _earliest(wake_at, clock.next_deadline(futures, time.perf_counter()))
        if self.hub:
            wake_at = _earliest(wake_at, self.last_event + HEARTBEAT_SECONDS)
        pause_deadline = self.source.pause_deadline
        if pause_deadline is not None:  # the collector is not kept waiting past it
            wake_at = _earliest(wake_at, pause_deadline)
        try:
            if wake_at is None:
                return self.completions.get()
            return self.completions.get(timeout=max(0.0, wake_at - time.perf_counter()))
        except queue.Empty:
            pass
        self.source.end_pause(only_if_expired=True)
        now = time.perf_counter()
        if self.deadline is not None and now >= self.deadline:
            raise ParallelTimeoutError(
                f"the Parallel call did not finish within timeout={self.plan.timeout}s "
                f"({self.n_completed} of {self.source.n_taken} dispatched tasks done); "
                "raise timeout or pass timeout=None"
            )
        if clock is not None:
            self._expire_tasks(clock, now)
        if self.hub and now - self.last_event >= HEARTBEAT_SECONDS:
            self.last_event = now
            self.hub.emit(heartbeat(self._progress()))
        return None

    def _expire_tasks(self, clock: TaskClock, now: float) -> None:
        running = [(index, entry[1]) for index, entry in self.in_flight.items()]
        for index in clock.expired(running, now):
            batch, future = self.in_flight.pop(index)
            self.backend.abandon(future)
            # task_timeout runs batches of one task, so the batch is the task.
            call = batch.calls[0]
            error = TaskTimeoutError(
                f"task {batch.first_task}, {describe_call(call)}(), ran longer than "
                f"task_timeout={clock.task_timeout}s and was stopped",
                task=batch.first_task,
                timeout=clock.task_timeout,
            )
            self._fail(batch.first_task, call, error, "", worker="")

    # -- completion ----------------------------------------------------------------------------
    def complete(self, index: int) -> None:
        entry = self.in_flight.pop(index, None)
        if self.clock is not None:
            self.clock.forget(index)
        if entry is None:
            return  # a batch given up on (task_timeout) that finished after all
        batch, future = entry
        try:
            outcome = future.result()
        except CancelledError:
            # Only the backend's stop cancels under a live run: its with-block ended.
            raise stopped_under_the_run(self.n_completed) from None
        except Exception as lost:  # the backend lost the batch (a worker died, ...)
            self._batch_lost(batch, lost)
            return
        self.last_event = time.perf_counter()
        if outcome.error is None:
            if self.plan.batch_size is None:
                self.sizer.observe(len(batch), outcome.duration)
            self.n_completed += len(batch)
            if self.hub:
                self.hub.emit(batch_completed(batch, outcome, self._progress(), self.timed))
            self.results.add(batch.first_task, outcome.results)
            return
        done = outcome.error_task
        if done:
            self.n_completed += done
            self.results.add(batch.first_task, outcome.results[:done])
        if self.hub:
            self.hub.emit(failure_event(batch, outcome, self._progress(), self.timed))
        failed_task = batch.first_task + done
        call = batch.calls[done]
        if not self.resilience.tolerates_failures:
            raise task_error(batch, outcome)
        self._fail(
            failed_task,
            call,
            outcome.error,
            outcome.error_traceback,
            outcome.worker,
            batch,
            outcome,
        )
        rest = batch.calls[done + 1 :]
        if rest:
            self.submit(failed_task + 1, rest)

    def _batch_lost(self, batch: Batch, lost: Exception) -> None:
        if not self.resilience.tolerates_failures:
            raise lost
        if len(batch) > 1:
            # Which call killed the worker is unknown: run each alone, so the next failure
            # is charged to the task that caused it.
            for position, call in enumerate(batch.calls):
                self.submit(batch.first_task + position, [call])
            return
        self._fail(batch.first_task, batch.calls[0], lost, "", worker="")

    def _fail(
        self,
        task_index: int,
        call: Call,
        error: BaseException,
        traceback_text: str,
        worker: str,
        batch: Batch | None = None,
        outcome: BatchOutcome | None = None,
    ) -> None:
        decision, delay = self.tracker.decide(task_index, error)
        if decision is Decision.RETRY:
            self.retries.push(time.perf_counter() + delay, task_index, call)
            return
        if decision is Decision.RAISE:
            if batch is not None and outcome is not None:
                raise task_error(batch, outcome)
            raise error
        name = describe_call(call)
        failure = self.tracker.record(task_index, call, error, traceback_text, name)
        self.n_completed += 1
        self.results.add(task_index, [failure])

    # -- the end ---------------------------------------------------------------------------------
    def close(self, failed: bool, reason: str, abandoned: bool = False) -> None:
        """End the run: abort what is in flight; when the consumer abandoned the run, warn
        how many sent tasks that cancelled (last, as warnings may be errors)."""
        self.source.end_pause()
        cancelled = unused = 0
        if self.in_flight:
            if abandoned:
                cancelled, unused = count_unfinished(self.in_flight.values())
            for _, pending in self.in_flight.values():
                pending.cancel()
            self.backend.abort()
        restored = 0 if self.checkpoint is None else self.checkpoint.restored
        failures = self.tracker.failures
        if failures and not failed:
            logger.warning("%s", summarise(failures, self.n_completed))
        if restored and not self.hub:
            logger.info("restored %d of %d tasks from the checkpoint", restored, self.n_completed)
        if self.hub:
            self.hub.emit(
                run_finished(
                    self._progress(), failed, reason, restored, len(failures), self.tracker.retried
                )
            )

        warn_cancelled(cancelled, unused)


def _earliest(first: float | None, second: float) -> float:
    return second if first is None else min(first, second)


def _announce(completions: queue.SimpleQueue[int], index: int, _: Future[BatchOutcome]) -> None:
    completions.put(index)
