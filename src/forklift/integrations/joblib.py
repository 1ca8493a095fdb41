"""Run joblib's ``Parallel`` - and so scikit-learn's ``n_jobs`` - on forklift's backends.

scikit-learn parallelises through joblib, not through forklift. This module registers a
joblib backend, ``"forklift"``, whose batches go to a forklift backend (by default forklift's
process pool, ``"loky"``; or ``"threading"``, ``"dask"``, ``"ray"``, any registered name)::

    import forklift.integrations.joblib as forklift_joblib
    from joblib import parallel_config
    from sklearn.model_selection import cross_val_score

    forklift_joblib.register()                      # once per process
    with parallel_config(backend="forklift"):       # or backend="forklift", forklift_backend="dask"
        scores = cross_val_score(model, X, y, cv=5, n_jobs=2)

How a joblib batch travels: joblib groups its calls into a batch callable and hands it to
:meth:`submit`; the bridge wraps it as a one-call forklift
:class:`~forklift.parallel.backends.base.Batch` and submits it through the forklift
backend's protocol; the outcome's error (if any) re-raises in joblib with its own type and the
worker's traceback chained. Batch sizes come from forklift's own estimator.

joblib is imported here and only here, when :func:`register` or :func:`backend_class` runs;
nothing else in forklift imports it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from forklift.config import current_settings
from forklift.errors import ConfigurationError, RemoteTraceback
from forklift.parallel.backends.base import Backend, Batch, BatchOutcome
from forklift.parallel.backends.registry import create_backend
from forklift.parallel.batching import BatchSizer

__all__ = ["backend_class", "register"]

_class_lock = threading.Lock()
_backend_class: type[Any] | None = None


def register(name: str = "forklift", make_default: bool = False) -> None:
    """Register the bridge as joblib backend ``name`` (joblib's own registry).

    With ``make_default=True`` every joblib call without a backend of its own uses it.

    Examples:
        joblib code - here joblib's own ``Parallel`` - runs on a forklift backend:

        >>> import joblib
        >>> import forklift.integrations.joblib as forklift_joblib
        >>> forklift_joblib.register()
        >>> with joblib.parallel_config(backend="forklift", forklift_backend="threading"):
        ...     joblib.Parallel(n_jobs=2)(joblib.delayed(abs)(-i) for i in range(4))
        [0, 1, 2, 3]
    """
    import joblib

    joblib.register_parallel_backend(name, backend_class(), make_default=make_default)


def backend_class() -> type[Any]:
    """The joblib backend class, built on first use (it subclasses joblib's base class).

    Use it to register the bridge yourself, or to pass an instance where joblib takes one.

    Examples:
        >>> import joblib
        >>> from forklift.integrations.joblib import backend_class
        >>> bridge = backend_class()(forklift_backend="threading")
        >>> isinstance(bridge, joblib.parallel.ParallelBackendBase)
        True
        >>> joblib.Parallel(n_jobs=2, backend=bridge)(joblib.delayed(pow)(i, 2) for i in range(4))
        [0, 1, 4, 9]
    """
    global _backend_class
    with _class_lock:
        if _backend_class is None:
            _backend_class = _build_backend_class()
        return _backend_class


def _build_backend_class() -> type[Any]:
    from joblib.parallel import ParallelBackendBase, SequentialBackend

    try:
        from joblib.parallel import FallbackToBackend
    except ImportError:  # pragma: no cover - older joblib keeps it elsewhere
        from joblib._parallel_backends import FallbackToBackend

    class ForkliftJoblibBackend(ParallelBackendBase):  # type: ignore[misc]
        """A joblib backend whose batches run on a forklift backend (default: processes).

        ``forklift_backend`` names the forklift backend; other keyword arguments go to it
        (``client=`` for dask, ``address=`` for ray, ...).
        """

        supports_retrieve_callback = True
        supports_timeout = True
        supports_inner_max_num_threads = False
        uses_threads = False
        supports_sharedmem = False
        default_n_jobs = 1

        def __init__(
            self,
            forklift_backend: str = "loky",
            nesting_level: int | None = None,
            inner_max_num_threads: int | None = None,
            **backend_params: Any,
        ) -> None:
            super().__init__(
                nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads
            )
            if not isinstance(forklift_backend, str):
                raise ConfigurationError(
                    f"forklift_backend must be a forklift backend name, got {forklift_backend!r}"
                )
            self._name = forklift_backend
            self._params = backend_params
            self._backend: Backend = create_backend(forklift_backend, dict(backend_params))
            self._n_workers = 0
            self._sizer = BatchSizer(self._backend.capabilities.batch_target_seconds)
            self._n_batches = 0

        def effective_n_jobs(self, n_jobs: int | None) -> int:
            if n_jobs == 0:
                raise ConfigurationError("n_jobs == 0 has no meaning")
            return max(1, self._backend.effective_n_jobs(1 if n_jobs is None else n_jobs))

        def configure(
            self,
            n_jobs: int | None = 1,
            parallel: Any = None,
            prefer: str | None = None,
            require: str | None = None,
            **backend_kwargs: Any,
        ) -> int:
            n_workers = self.effective_n_jobs(n_jobs)
            if n_workers == 1 and self._name in ("loky", "processes", "threading"):
                raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
            self.parallel = parallel
            self._n_workers = n_workers
            self._backend.start(n_workers)
            return n_workers

        def submit(self, func: Callable[[], Any], callback: Any = None) -> Future[Any]:
            settings = current_settings()
            worker_settings = dataclasses.replace(
                settings,
                backend=self._backend.capabilities.nested_backend,
                n_jobs=None,
                require=None,
                prefer=None,
                backend_params={},
                worker_of=self._backend.name,
            )
            batch = Batch(self._n_batches, 0, [(func, (), {})], worker_settings)
            self._n_batches += 1
            result: Future[Any] = Future()
            inner = self._backend.submit(batch)
            inner.add_done_callback(lambda done: _relay(done, result))
            if callback is not None:
                result.add_done_callback(callback)
            return result

        def retrieve_result_callback(self, out: Future[Any]) -> Any:
            return out.result()

        def compute_batch_size(self) -> int:
            return self._sizer.size

        def batch_completed(self, batch_size: int, duration: float) -> None:
            self._sizer.observe(batch_size, duration)

        def abort_everything(self, ensure_ready: bool = True) -> None:
            self._backend.abort()
            if ensure_ready and self._n_workers:
                self._backend.start(self._n_workers)

        def terminate(self) -> None:
            self._backend.stop(wait=True)
            self._sizer = BatchSizer(self._backend.capabilities.batch_target_seconds)

        def get_nested_backend(self) -> tuple[Any, int | None]:
            # A joblib call inside a forklift worker runs inline, as forklift's nested calls do.
            return SequentialBackend(nesting_level=(self.nesting_level or 0) + 1), None

    return ForkliftJoblibBackend


def _relay(done: Future[BatchOutcome], result: Future[Any]) -> None:
    """Hand a forklift batch outcome to joblib: the batch's results, or its task's error."""
    if done.cancelled():
        result.cancel()
        return
    error = done.exception()
    if error is None:
        outcome = done.result()
        if outcome.error is None:
            # joblib's batch callable returns the list of its calls' results: that is ours.
            result.set_result(outcome.results[0])
            return
        error = outcome.error
        if error.__traceback__ is None and error.__cause__ is None:
            error.__cause__ = RemoteTraceback(outcome.error_traceback)
    result.set_exception(error)
