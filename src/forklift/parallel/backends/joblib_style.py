"""Backends written for joblib, run by forklift's engine through an adapter.

joblib documents its own backend interface: a ``ParallelBackendBase`` subclass (or any object
with the same methods) that the caller ``configure``\\s with a number of jobs, hands batch
callables with ``submit(func, callback)`` (``apply_async`` in older backends) and reads results
from with ``retrieve_result_callback`` or ``retrieve_result``. Third-party engines - ray's
``ray.util.joblib``, joblib-spark - ship such classes. forklift's native interface stays the
five-method :class:`~forklift.parallel.backends.base.Backend`; :class:`JoblibStyleBackend`
turns one into the other so the engine never learns the difference::

    engine --submit(Batch)--> JoblibStyleBackend --submit(task, callback)--> joblib backend
      ^                              |  first submit: configure(n_jobs, parallel, **kwargs)
      +---- Future[BatchOutcome] <---+  callback: retrieve_result_callback(out) -> BatchOutcome

What the adapter keeps of joblib's interface and what it leaves to forklift:

* ``configure`` runs once, at the first batch, with joblib's keyword arguments (``max_nbytes``
  in bytes, ``temp_folder``, ``mmap_mode``, ``verbose``, a multiprocessing ``context``) taken
  from the batch's settings; a ``FallbackToBackend`` raised there (joblib's way to say "one
  worker: run inline") makes the adapter run batches in the caller's thread.
* Batch sizes come from forklift's estimator, not ``compute_batch_size`` (the engine owns
  batching for every backend); ``abort_everything(ensure_ready=False)`` aborts, ``terminate``
  stops; ``get_nested_backend`` is not consulted: nested calls follow forklift's rule (the
  adapter's ``nested_backend`` capability).
* A batch travels to a process-based backend as cloudpickle bytes, so lambdas and functions
  defined in ``__main__`` work there as on forklift's own backends; large numpy arrays travel
  inside those bytes (not as memory maps: that is forklift's pool's and joblib's pools' job).

This module imports no joblib: it recognises joblib-style objects by their methods, so a
duck-typed backend works as well as a subclass of joblib's base class.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import threading
import uuid
from concurrent.futures import CancelledError, Future, InvalidStateError
from typing import Any

import cloudpickle

from forklift._support.sizes import parse_bytes
from forklift.config import Settings
from forklift.errors import ConfigurationError
from forklift.parallel.backends.base import BackendCapabilities, Batch, BatchOutcome, run_batch

__all__ = ["JoblibStyleBackend", "is_joblib_style", "is_multiprocessing_context"]

logger = logging.getLogger("forklift.parallel")

# How often a result thread without callbacks looks whether its batch was given up.
_POLL_SECONDS = 0.2
# What joblib's Parallel itself calls on every backend; the adapter needs the same.
_REQUIRED_METHODS = ("effective_n_jobs", "configure")


def is_joblib_style(candidate: object) -> bool:
    """True for an object written to joblib's backend interface (a class is not one).

    forklift's own protocol has no ``configure``; joblib's always has one (its base class
    defines it and ``joblib.Parallel`` calls it), so ``configure`` plus ``submit`` or
    ``apply_async`` tells the two apart.
    """
    if isinstance(candidate, type):
        return False
    if not all(callable(getattr(candidate, method, None)) for method in _REQUIRED_METHODS):
        return False
    return callable(getattr(candidate, "submit", None)) or callable(
        getattr(candidate, "apply_async", None)
    )


def is_multiprocessing_context(candidate: object) -> bool:
    """True for a ``multiprocessing`` context (``mp.get_context("spawn")``) or the module."""
    return (
        not isinstance(candidate, type | str)
        and callable(getattr(candidate, "Pool", None))
        and callable(getattr(candidate, "Lock", None))
        and callable(getattr(candidate, "get_start_method", None))
    )


class _ParallelView:
    """What a joblib backend may read from the ``parallel`` argument of ``configure``.

    joblib's own backends read ``n_jobs``, ``verbose``, ``timeout``, ``_backend_kwargs``,
    ``_id`` and call ``_print``; third-party ones follow them.
    """

    def __init__(self, n_jobs: int, verbose: int, backend_kwargs: dict[str, Any]) -> None:
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.timeout: float | None = None
        self.batch_size = "auto"
        self.pre_dispatch = "2 * n_jobs"
        self._backend_kwargs = backend_kwargs
        self._id = uuid.uuid4().hex

    def _print(self, message: str) -> None:
        logger.info("%s", message)


class _PickledBatch:
    """A batch as cloudpickle bytes: pickles anywhere, runs the batch when called."""

    def __init__(self, batch: Batch, worker_of: str) -> None:
        self._payload = cloudpickle.dumps((batch, worker_of), protocol=5)

    def __call__(self) -> BatchOutcome:
        batch, worker_of = pickle.loads(self._payload)
        return run_batch(batch, worker_of=worker_of)


class _InlineBatch:
    """A batch for a backend whose workers are threads of this process: no pickling."""

    def __init__(self, batch: Batch, worker_of: str) -> None:
        self._batch = batch
        self._worker_of = worker_of

    def __call__(self) -> BatchOutcome:
        return run_batch(self._batch, worker_of=self._worker_of)


class JoblibStyleBackend:
    """A forklift backend running its batches on a backend written for joblib.

    Examples:
        A duck-typed joblib backend - the methods joblib's documentation lists - whose
        batches run at once in the caller's thread:

        >>> from concurrent.futures import Future
        >>> from forklift import Parallel, delayed
        >>> class RunNow:
        ...     supports_retrieve_callback = True
        ...     def effective_n_jobs(self, n_jobs):
        ...         return 2
        ...     def configure(self, n_jobs=1, parallel=None, **kwargs):
        ...         return 2
        ...     def submit(self, func, callback=None):
        ...         future = Future()
        ...         future.set_result(func())
        ...         future.add_done_callback(callback)
        ...         return future
        ...     def retrieve_result_callback(self, out):
        ...         return out.result()
        >>> Parallel(n_jobs=2, backend=RunNow())(delayed(pow)(i, 2) for i in range(4))
        [0, 1, 4, 9]
    """

    def __init__(self, inner: Any, *, name: str | None = None) -> None:
        if not is_joblib_style(inner):
            raise ConfigurationError(
                f"{inner!r} is not a joblib-style backend: it needs effective_n_jobs(), "
                "configure() and submit() (or apply_async())"
            )
        self.inner = inner
        self.name = name or type(inner).__name__
        shares_memory = bool(getattr(inner, "supports_sharedmem", False))
        self._threads = bool(getattr(inner, "uses_threads", False)) or shares_memory
        self.capabilities = BackendCapabilities(
            shares_memory=shares_memory,
            uses_processes=not self._threads,
            persistent_workers=True,
            batch_target_seconds=0.1,
            # joblib nests threads under processes; forklift's rule for its own backends.
            nested_backend="sequential" if self._threads else "threading",
            default_n_jobs=_as_int(getattr(inner, "default_n_jobs", 1), default=1),
            limits_inner_threads=bool(getattr(inner, "supports_inner_max_num_threads", False)),
        )
        self._lock = threading.Lock()
        self._n_workers = 1
        self._configured = False
        self._inline = False
        self._pending: set[Future[BatchOutcome]] = set()

    def effective_n_jobs(self, n_jobs: int) -> int:
        return max(1, _as_int(self.inner.effective_n_jobs(n_jobs), default=1))

    def start(self, n_workers: int) -> None:
        # joblib configures a backend per call with that call's options; those travel in
        # the batches, so configuring waits for the first one.
        self._n_workers = n_workers

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        with self._lock:
            if not self._configured:
                self._configure(batch.settings)
        if self._inline:
            done: Future[BatchOutcome] = Future()
            done.set_result(run_batch(batch, worker_of=self.name))
            return done
        task = (_InlineBatch if self._threads else _PickledBatch)(batch, self.name)
        future: Future[BatchOutcome] = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        if getattr(self.inner, "supports_retrieve_callback", False):
            self._send(task, lambda out: self._settle(future, out))
        else:
            job = self._send(task, None)
            # A daemon: a backend that never answers must not keep the interpreter alive.
            threading.Thread(
                target=self._wait_for,
                args=(future, job),
                name="forklift-joblib-result",
                daemon=True,
            ).start()
        return future

    def abort(self) -> None:
        with self._lock:
            configured, self._configured = self._configured, False
            pending = list(self._pending)
        if configured and not self._inline:
            abort_everything = getattr(self.inner, "abort_everything", None)
            if callable(abort_everything):
                abort_everything(ensure_ready=False)
            self._terminate()
        for future in pending:
            _fail(future, CancelledError())

    def abandon(self, future: Future[BatchOutcome]) -> None:
        # joblib's interface cannot stop one task; its result is dropped when it comes.
        _fail(future, CancelledError())

    def stop(self, wait: bool = True) -> None:
        with self._lock:
            configured, self._configured = self._configured, False
        if configured and not self._inline:
            stop_call = getattr(self.inner, "stop_call", None)
            if callable(stop_call):
                stop_call()
            self._terminate()

    def __repr__(self) -> str:
        return f"JoblibStyleBackend({self.inner!r})"

    # -- helpers ---------------------------------------------------------------------------
    def _configure(self, settings: Settings) -> None:
        """Call ``configure`` as ``joblib.Parallel`` would; follow a fallback to inline."""
        threads = settings.inner_max_num_threads
        if threads is not None and self.capabilities.limits_inner_threads:
            self.inner.inner_max_num_threads = threads
        kwargs = _joblib_backend_kwargs(settings)
        parallel = _ParallelView(self._n_workers, int(settings.verbose), kwargs)
        try:
            self.inner.configure(n_jobs=self._n_workers, parallel=parallel, **kwargs)
        except Exception as error:
            if type(error).__name__ != "FallbackToBackend":
                raise
            # joblib's only use of it: "this call needs no workers, run it sequentially".
            self._inline = True
        else:
            self._inline = False
            start_call = getattr(self.inner, "start_call", None)
            if callable(start_call):
                start_call()
        self._configured = True

    def _send(self, task: Any, callback: Any) -> Any:
        submit = getattr(self.inner, "submit", None)
        if not callable(submit):
            submit = self.inner.apply_async  # joblib before 1.4 named it so
        return submit(task, callback=callback)

    def _settle(self, future: Future[BatchOutcome], out: Any) -> None:
        """joblib's callback, in the backend's thread: read the outcome, resolve the future."""
        try:
            outcome = self.inner.retrieve_result_callback(out)
        except BaseException as error:
            _fail(future, error)
            return
        _resolve(future, outcome)

    def _wait_for(self, future: Future[BatchOutcome], job: Any) -> None:
        """For backends without result callbacks: wait on ``retrieve_result`` in a thread.

        A backend that takes a timeout is polled, so that the thread ends once the batch was
        given up (an abort may leave a job that never completes); one that does not is
        waited on outright, as ``joblib.Parallel`` would.
        """
        retrieve: Any = getattr(self.inner, "retrieve_result", None)
        polled = callable(retrieve) and bool(getattr(self.inner, "supports_timeout", False))
        while True:
            try:
                if polled:
                    outcome = retrieve(job, timeout=_POLL_SECONDS)
                else:
                    outcome = retrieve(job) if callable(retrieve) else job.get()
            except (TimeoutError, multiprocessing.TimeoutError) as error:
                if polled and not future.done():
                    continue
                _fail(future, error)
                return
            except BaseException as error:
                _fail(future, error)
                return
            _resolve(future, outcome)
            return

    def _forget(self, future: Future[BatchOutcome]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _terminate(self) -> None:
        terminate = getattr(self.inner, "terminate", None)
        if callable(terminate):
            terminate()


def _joblib_backend_kwargs(settings: Settings) -> dict[str, Any]:
    """The keyword arguments ``joblib.Parallel`` passes to ``configure``, from settings."""
    max_nbytes = settings.max_nbytes
    return {
        "max_nbytes": None if max_nbytes is None else parse_bytes(max_nbytes, name="max_nbytes"),
        "temp_folder": settings.temp_folder,
        "mmap_mode": settings.mmap_mode,
        "prefer": settings.prefer,
        "require": settings.require,
        "verbose": max(0, int(settings.verbose) - 50),
        "context": multiprocessing.get_context(),
    }


def _as_int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _resolve(future: Future[BatchOutcome], outcome: object) -> None:
    if future.done():
        return
    if not isinstance(outcome, BatchOutcome):
        _fail(
            future,
            ConfigurationError(
                f"the joblib-style backend returned {type(outcome).__name__} where the batch's "
                "own return value was expected; its retrieve_result_callback must return "
                "what the submitted callable returned"
            ),
        )
        return
    future.set_result(outcome)


def _fail(future: Future[BatchOutcome], error: BaseException) -> None:
    if not future.done():
        with contextlib.suppress(InvalidStateError):  # resolved by another thread meanwhile
            future.set_exception(error)
