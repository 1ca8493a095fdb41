"""The ``"multiprocessing"`` backend: batches run on the stdlib's ``multiprocessing.Pool``.

For compatibility with code written for joblib's backend of the same name. It uses the
platform's default start method (fork on Linux before Python 3.14), as joblib's does, so a
script without a main guard works there; forklift's own pool (``"loky"``) is faster to reuse
and safer in a parent that runs threads.

Batches travel through cloudpickle (lambdas, closures and ``__main__`` functions work); each
call gets its own pool, closed when the call ends. Large numpy arrays (``max_nbytes``) reach
workers as memory maps of files written once per call, as on the ``"loky"`` backend.
Backend parameters: ``initializer``, ``initargs``, ``maxtasksperchild``, and ``context``: a
``multiprocessing`` context (``Parallel(backend=mp.get_context("spawn"))`` passes it, as joblib
accepts) choosing the start method.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import pickle
import warnings
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

import cloudpickle

from forklift._support.worker_state import run_initializer
from forklift.errors import (
    ConfigurationError,
    ForkliftWarning,
    ParallelStateError,
    TaskPicklingError,
    TempSpaceError,
)
from forklift.parallel.backends._large_arrays import array_files_for
from forklift.parallel.backends.base import (
    BackendCapabilities,
    Batch,
    BatchOutcome,
    ParallelBackendBase,
    describe_call,
    pack_outcome,
    run_batch,
)
from forklift.pool.shared_arrays import ArrayFiles, dumps_with_arrays

__all__ = ["MultiprocessingBackend"]


class MultiprocessingBackend(ParallelBackendBase):
    """Runs batches on a ``multiprocessing.Pool`` started for the call."""

    name = "multiprocessing"
    capabilities = BackendCapabilities(
        uses_processes=True,
        persistent_workers=True,
        batch_target_seconds=0.1,
        nested_backend="threading",
    )

    def __init__(
        self,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        maxtasksperchild: int | None = None,
        context: multiprocessing.context.BaseContext | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConfigurationError(
                f"the multiprocessing backend does not take {sorted(unknown)}; it takes "
                "initializer, initargs, maxtasksperchild, context"
            )
        self._context = context if context is not None else multiprocessing.get_context()
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._maxtasksperchild = maxtasksperchild
        self._pool: multiprocessing.pool.Pool | None = None
        self._arrays: ArrayFiles | None = None

    def effective_n_jobs(self, n_jobs: int) -> int:
        if n_jobs != 1 and multiprocessing.current_process().daemon:
            # A pool's workers are daemonic and may not start children; without this the
            # nested call dies with "daemonic processes are not allowed to have children".
            warnings.warn(
                "Multiprocessing-backed parallel loops cannot be nested, setting n_jobs=1: "
                "this call runs inside a multiprocessing worker, so it runs sequentially "
                "(use backend='loky' for the outer call to nest process pools)",
                ForkliftWarning,
                stacklevel=2,
            )
            return 1
        return super().effective_n_jobs(n_jobs)

    def start(self, n_workers: int) -> None:
        if self._pool is not None:
            return
        initializer = None
        initargs: tuple[Any, ...] = ()
        if self._initializer is not None:
            initializer = _run_pickled_initializer
            initargs = (cloudpickle.dumps((self._initializer, self._initargs)),)
        self._pool = self._context.Pool(n_workers, initializer, initargs, self._maxtasksperchild)

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        if self._pool is None:
            raise ParallelStateError("the multiprocessing backend was not started")
        future: Future[BatchOutcome] = Future()
        future.set_running_or_notify_cancel()
        if batch.index == 0:
            self._close_arrays()  # a new run: the last run's array files go
            self._arrays = array_files_for(batch.settings)
        try:
            if self._arrays is None:
                payload = cloudpickle.dumps(batch, protocol=5)
            else:
                payload = dumps_with_arrays(batch, self._arrays)
        except TempSpaceError as error:
            future.set_exception(error)
            return future
        except Exception as error:
            problem = TaskPicklingError(
                f"the task {describe_call(batch.calls[0])} could not be pickled to send it to "
                f"a worker: {error}"
            )
            problem.__cause__ = error
            future.set_exception(problem)
            return future
        self._pool.apply_async(
            _run_pickled_batch,
            (payload,),
            callback=lambda data: _resolve(future, data),
            error_callback=lambda error: _fail(future, error),
        )
        return future

    def abandon(self, future: Future[BatchOutcome]) -> None:
        """Give up on one batch: the stdlib pool cannot stop a single task, so it runs on in
        its worker and its result is dropped."""
        _fail(future, CancelledError())

    def abort(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
            pool.join()
        self._close_arrays()

    def stop(self, wait: bool = True) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if wait:
            pool.close()
        else:
            pool.terminate()
        pool.join()
        self._close_arrays()

    def _close_arrays(self) -> None:
        arrays, self._arrays = self._arrays, None
        if arrays is not None:
            arrays.close()

    def __repr__(self) -> str:
        return "MultiprocessingBackend()"


def _resolve(future: Future[BatchOutcome], data: bytes) -> None:
    try:
        outcome = pickle.loads(data)
    except Exception as error:
        _fail(future, error)
        return
    if not future.done():
        future.set_result(outcome)


def _fail(future: Future[BatchOutcome], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _run_pickled_initializer(payload: bytes) -> None:
    initializer, initargs = pickle.loads(payload)
    run_initializer(initializer, initargs, per_thread=False)


def _run_pickled_batch(payload: bytes) -> bytes:
    """Runs in a worker: unpickle a batch, run it, pickle its outcome (or say what failed)."""
    batch: Batch = pickle.loads(payload)
    outcome = run_batch(batch, worker_of=MultiprocessingBackend.name)
    return pack_outcome(batch, outcome, _dumps)


def _dumps(value: Any) -> bytes:
    data: bytes = cloudpickle.dumps(value, protocol=5)
    return data
