"""The threading backend: batches run on a pool of threads in the caller's process.

Threads share the caller's memory, so this is the backend ``require="sharedmem"`` and
``prefer="threads"`` pick. Pure-Python work does not run in parallel under the GIL; work in
NumPy, I/O or other code that releases the GIL does.

A thread cannot be killed, so :meth:`ThreadingBackend.abort` cancels queued batches and sets
a flag that running batches check between calls; a call that is already running finishes.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from forklift._support.cpus import cpu_count
from forklift.errors import ParallelStateError
from forklift.parallel.backends.base import BackendCapabilities, Batch, BatchOutcome, run_batch

__all__ = ["ThreadingBackend"]


class ThreadingBackend:
    """Runs batches on ``n_workers`` threads of a :class:`ThreadPoolExecutor`."""

    name = "threading"
    capabilities = BackendCapabilities(
        shares_memory=True,
        persistent_workers=True,
        batch_target_seconds=0.01,
        nested_backend="sequential",
    )

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()

    def effective_n_jobs(self, n_jobs: int) -> int:
        if n_jobs < 0:
            return max(cpu_count() + 1 + n_jobs, 1)
        return n_jobs

    def start(self, n_workers: int) -> None:
        if self._executor is not None:
            return
        self._stopping = threading.Event()
        self._executor = ThreadPoolExecutor(
            max_workers=n_workers, thread_name_prefix="forklift-thread"
        )

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        if self._executor is None:
            raise ParallelStateError("the threading backend was not started")
        return self._executor.submit(run_batch, batch, self._stopping.is_set, self.name)

    def abort(self) -> None:
        self._stopping.set()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def stop(self, wait: bool = True) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None

    def __repr__(self) -> str:
        return "ThreadingBackend()"
