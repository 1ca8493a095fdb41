"""The ``"loky"`` backend (alias ``"processes"``): batches run on forklift's own process pool.

Each ``Parallel`` call borrows the shared pool (:func:`forklift.pool.get_reusable_executor`),
so workers started by one call serve the next. The functions of a call travel to each worker
once per call, not once per batch: each call's batches share one
:class:`~forklift.pool.SharingScope`, so a batch carries a token in place of its function, and
the pool sends the function itself (with its closure and defaults, pickled by cloudpickle) the
first time a worker needs it.

Backend parameters (``Parallel(..., **backend_kwargs)`` or ``parallel_config``):

* ``initializer``, ``initargs``: run ``initializer(*initargs)`` once in each worker.
* ``idle_worker_timeout`` (seconds, default 300): idle workers exit after this long.
* ``env``: environment variables for the workers.
* ``max_tasks_per_child``: replace a worker after this many batches.
* ``memory_growth_limit`` (bytes): replace a worker whose memory grew by this much.
* ``inner_max_num_threads``: BLAS/OpenMP threads per worker (default: the worker's share of
  the CPUs, ``cpu_count() // n_workers``).

Large numpy arrays in a task's arguments (``max_nbytes`` or more) are written once per call to
a file in the temp folder and reach workers as memory maps (see
:mod:`forklift.pool.shared_arrays`); the files go when the call ends (in a ``with Parallel``
block: when the next call starts or the block ends).

An abandoned call (its generator closed or deleted, its ``with`` block ended, an error) gives
up its tasks at once: queued ones are dropped; workers running them get a short grace to
finish and are killed and replaced after it, so later calls and other live generators start
without waiting. These requests never wait for the pool's lock, because they may come from a
finalizer that the garbage collector runs on any thread - the pool's own included.

A ``Parallel`` nested in a task uses threads (its ``n_jobs=-1`` means the worker's share of
the CPUs, because workers see ``cpu_count()`` capped to that share).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from forklift._support.cpus import cpu_count, threads_per_worker
from forklift.config import current_settings
from forklift.errors import ConfigurationError, ParallelStateError
from forklift.parallel.backends._in_worker import WORKER_MODULE, run_batch_in_worker
from forklift.parallel.backends._large_arrays import array_files_for
from forklift.parallel.backends.base import (
    BackendCapabilities,
    Batch,
    BatchOutcome,
    ParallelBackendBase,
    describe_call,
)
from forklift.pool import ProcessPool, SharingScope
from forklift.pool.options import WorkerOptions
from forklift.pool.reusable import acquire_executor, release_executor

__all__ = ["ProcessBackend"]

# How long a worker running an abandoned task may go on before it is killed and replaced.
# A replacement worker starts at once (for the work waiting); meanwhile the two share the
# cores. Starting one costs ~20 ms here, but a killed worker also loses what it imported
# (seconds, for scikit-learn), so a task that is about to end is let end.
ABANDON_GRACE_SECONDS = 1.0

_PARAMETERS = frozenset(
    {
        "initializer",
        "initargs",
        "idle_worker_timeout",
        "env",
        "max_tasks_per_child",
        "memory_growth_limit",
        "inner_max_num_threads",
    }
)


class ProcessBackend(ParallelBackendBase):
    """Runs batches in worker processes of forklift's shared process pool."""

    name = "loky"
    capabilities = BackendCapabilities(
        uses_processes=True,
        persistent_workers=True,
        # A hand-off costs ~0.1 ms of the worker's time but ~0.5 ms of the caller's, which
        # shares the cores with busy workers. Measured on 2 cores (64 x 20 ms tasks): 0.02 s
        # batches gave 0.97 parallel efficiency, 0.05 s 0.98, 0.1 s 0.93 (uneven ends).
        batch_target_seconds=0.05,
        nested_backend="threading",
        limits_inner_threads=True,
    )

    def __init__(
        self,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        idle_worker_timeout: float | None = 300,
        env: Mapping[str, str] | None = None,
        max_tasks_per_child: int | None = None,
        memory_growth_limit: int | None = None,
        inner_max_num_threads: int | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConfigurationError(
                f"the loky (process) backend does not take {sorted(unknown)}; it takes "
                f"{sorted(_PARAMETERS)}"
            )
        self._options = WorkerOptions(
            initializer=initializer,
            initargs=initargs,
            env=env or {},
            max_tasks_per_child=max_tasks_per_child,
            memory_growth_limit=memory_growth_limit,
        )
        self._idle_worker_timeout = idle_worker_timeout
        self._inner_max_num_threads = inner_max_num_threads
        self._pool: ProcessPool | None = None
        self._scope = SharingScope()
        self._scope_used = False
        self._stopped = False
        self.n_workers = 0

    def start(self, n_workers: int) -> None:
        threads = (
            self._inner_max_num_threads
            or current_settings().inner_max_num_threads
            or threads_per_worker(n_workers)
        )
        if self._pool is not None:
            release_executor(self._pool, self.n_workers)
        self._stopped = False
        self._pool = acquire_executor(
            n_workers,
            self._options.replace(thread_limit=threads),
            preload=[WORKER_MODULE],
            idle_worker_timeout=self._idle_worker_timeout,
        )
        self.n_workers = n_workers
        # Start the workers now, without waiting: they come up while the first batches are
        # being prepared.
        self._pool.start_workers(n_workers)

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        pool = self._pool
        if pool is None:
            if self._stopped:
                raise ParallelStateError(
                    "the loky backend of this call was stopped (its Parallel's with-block "
                    "ended); consume a generator inside the with-block that made it"
                )
            self.start(self.n_workers or cpu_count())
            pool = self._pool
            assert pool is not None
        if batch.index == 0:
            if self._scope_used:
                # A new run on the same workers: send functions afresh (globals may have
                # changed) and write its arrays afresh; the last run's files are removed.
                self._new_scope(pool)
            if self._scope.arrays is None:
                self._scope.arrays = array_files_for(batch.settings)
        self._scope_used = True
        future: Future[BatchOutcome] = pool.submit_task(
            run_batch_in_worker,
            (batch,),
            scope=self._scope,
            label=f"{describe_call(batch.calls[0])} (tasks {batch.first_task}"
            f"-{batch.first_task + len(batch) - 1})",
        )
        return future

    def abandon(self, future: Future[BatchOutcome]) -> None:
        """Stop one batch (past ``task_timeout``): its worker is killed and replaced."""
        if self._pool is not None:
            self._pool.cancel_future(future)
        else:
            future.cancel()

    def abort(self) -> None:
        """Give up the current call's tasks (see the module docstring); never blocks."""
        if self._pool is not None:
            self._pool.cancel_scope(self._scope, grace=ABANDON_GRACE_SECONDS)
            self._new_scope(self._pool)

    def stop(self, wait: bool = True) -> None:
        """Give the pool back. Work still in flight was abandoned (a generator left
        unconsumed when its with-block ended): it is given up as by :meth:`abort`."""
        pool, self._pool = self._pool, None
        self._stopped = True
        if pool is not None:
            if self._scope_used:
                pool.cancel_scope(self._scope, grace=ABANDON_GRACE_SECONDS)
            self._new_scope(pool)
            release_executor(pool, self.n_workers)

    def _new_scope(self, pool: ProcessPool) -> None:
        old, self._scope = self._scope, SharingScope()
        self._scope_used = False
        pool.release_scope(old)

    def __repr__(self) -> str:
        return "ProcessBackend()"
