"""The threading backend: batches run on threads in the caller's process.

Threads share the caller's memory, so this is the backend ``require="sharedmem"`` and
``prefer="threads"`` pick. Pure-Python work does not run in parallel under the GIL; work in
NumPy, I/O or other code that releases the GIL does.

A thread cannot be killed. :meth:`ThreadingBackend.abort` cancels queued batches and sets a
flag that running batches check between calls; a call already running finishes. A batch given
up on (``task_timeout``) keeps its thread busy until it returns, so :meth:`abandon` starts a
replacement thread: the run keeps its number of workers. Threads are daemons, so a task that
never returns cannot keep the interpreter from exiting.

(The pool is a queue and a few threads rather than ``ThreadPoolExecutor``, which cannot add
a thread to replace one that is stuck.)
"""

from __future__ import annotations

import itertools
import queue
import threading
from concurrent.futures import Future
from typing import Any

from forklift._support.worker_state import run_initializer
from forklift.errors import ConfigurationError, ParallelStateError
from forklift.parallel.backends.base import (
    BackendCapabilities,
    Batch,
    BatchOutcome,
    ParallelBackendBase,
    run_batch,
)

__all__ = ["ThreadingBackend"]

_names = itertools.count()
_Work = tuple[Batch, "Future[BatchOutcome]"] | None


class ThreadingBackend(ParallelBackendBase):
    """Runs batches on ``n_workers`` threads.

    Backend parameters: ``initializer`` and ``initargs`` - called once in each thread; what the
    initializer returns is that thread's :func:`forklift.worker_state`.
    """

    name = "threading"
    capabilities = BackendCapabilities(
        shares_memory=True,
        persistent_workers=True,
        batch_target_seconds=0.01,
        nested_backend="sequential",
    )

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - {"initializer", "initargs"}
        if unknown:
            raise ConfigurationError(
                f"the threading backend does not take {sorted(unknown)}; it takes initializer, "
                "initargs"
            )
        self._initializer = params.get("initializer")
        self._initargs = tuple(params.get("initargs", ()))
        if self._initializer is not None and not callable(self._initializer):
            raise ConfigurationError(f"initializer must be callable, got {self._initializer!r}")
        self._work: queue.SimpleQueue[_Work] | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._abandoned = 0

    def start(self, n_workers: int) -> None:
        if self._work is not None:
            return
        self._work = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._abandoned = 0
        self._threads = []
        for _ in range(n_workers):
            self._add_thread()

    def _add_thread(self) -> None:
        assert self._work is not None
        thread = threading.Thread(
            target=self._serve,
            args=(self._work, self._stopping),
            name=f"forklift-thread_{next(_names)}",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)

    def _serve(self, work: queue.SimpleQueue[_Work], stopping: threading.Event) -> None:
        if self._initializer is not None:
            run_initializer(self._initializer, self._initargs)
        while True:
            item = work.get()
            if item is None:
                return
            batch, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(run_batch(batch, stopping.is_set, self.name))
            except BaseException as error:  # run_batch reports task errors; this is ours
                future.set_exception(error)

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        if self._work is None:
            raise ParallelStateError("the threading backend was not started")
        future: Future[BatchOutcome] = Future()
        self._work.put((batch, future))
        return future

    def abandon(self, future: Future[BatchOutcome]) -> None:
        if future.cancel() or self._work is None:
            return  # it had not started: nothing is stuck
        self._abandoned += 1
        self._add_thread()

    def abort(self) -> None:
        self._stopping.set()
        self._shut_down(wait=False)

    def stop(self, wait: bool = True) -> None:
        self._shut_down(wait=wait and not self._abandoned)

    def _shut_down(self, wait: bool) -> None:
        work, self._work = self._work, None
        if work is None:
            return
        while True:  # cancel what is queued
            try:
                item = work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].cancel()
        for _ in self._threads:
            work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def __repr__(self) -> str:
        return "ThreadingBackend()"
