"""The process backend ("loky", alias "processes") - interim version on the stdlib pool.

Batches travel through cloudpickle so lambdas, closures and functions defined in ``__main__``
work; workers start from a forkserver that does not import the user's ``__main__``, so
scripts without a main guard are safe. forklift's own pool (``forklift.pool``) replaces the
executor underneath.
"""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import cloudpickle

from forklift._support.cpus import cpu_count
from forklift.errors import ConfigurationError, ParallelStateError
from forklift.parallel.backends.base import BackendCapabilities, Batch, BatchOutcome, run_batch

__all__ = ["ProcessBackend"]


def _run_pickled(payload: bytes) -> bytes:
    outcome = run_batch(pickle.loads(payload), worker_of="loky")
    try:
        return bytes(cloudpickle.dumps(outcome))
    except Exception as error:
        failure = BatchOutcome(
            [],
            error=RuntimeError(f"a task's result or error could not be pickled: {error!r}"),
            error_traceback=outcome.error_traceback,
            error_task=max(outcome.error_task, 0),
            started=outcome.started,
            finished=outcome.finished,
            worker=outcome.worker,
        )
        return bytes(cloudpickle.dumps(failure))


class ProcessBackend:
    """Runs batches in worker processes."""

    name = "loky"
    capabilities = BackendCapabilities(
        uses_processes=True,
        persistent_workers=True,
        batch_target_seconds=0.1,
        nested_backend="sequential",
    )

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - {"initializer", "initargs"}
        if unknown:
            raise ConfigurationError(
                f"the loky backend does not take {sorted(unknown)}; it takes initializer, initargs"
            )
        self._params = params
        self._executor: ProcessPoolExecutor | None = None

    def effective_n_jobs(self, n_jobs: int) -> int:
        if n_jobs < 0:
            return max(cpu_count() + 1 + n_jobs, 1)
        return n_jobs

    def start(self, n_workers: int) -> None:
        if self._executor is not None:
            return
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([])
        self._executor = ProcessPoolExecutor(
            max_workers=n_workers,
            mp_context=context,
            initializer=self._params.get("initializer"),
            initargs=self._params.get("initargs", ()),
        )

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        if self._executor is None:
            raise ParallelStateError("the process backend was not started")
        result: Future[BatchOutcome] = Future()
        inner = self._executor.submit(_run_pickled, cloudpickle.dumps(batch))

        def relay(done: Future[bytes]) -> None:
            if done.cancelled():
                result.cancel()
                result.set_running_or_notify_cancel()
                return
            error = done.exception()
            if error is not None:
                result.set_exception(error)
            else:
                result.set_result(pickle.loads(done.result()))

        inner.add_done_callback(relay)
        return result

    def abort(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def stop(self, wait: bool = True) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=True)
            self._executor = None

    def __repr__(self) -> str:
        return "ProcessBackend()"
