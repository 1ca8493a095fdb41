"""Run joblib's ``Parallel`` - and so scikit-learn's ``n_jobs`` - on forklift's backends.

scikit-learn parallelises through joblib, not through forklift. Inside a
``forklift.parallel_config`` block that names a backend, joblib code runs on that forklift
backend with nothing else to do: entering the block (see :func:`route_joblib`, hooked in by
:mod:`forklift.integrations.config_hooks`) enters a ``joblib.parallel_config`` whose backend is
this module's bridge. A block that names no backend passes only ``n_jobs``, ``prefer``,
``require`` and ``verbose`` on (joblib keeps its own backends). joblib is imported then - once,
about 0.2 s - if it is installed and not imported yet; ``import forklift`` never imports it.
Backend names forklift does not know are looked up in joblib's registry (``register_spark()``
makes ``backend="spark"`` work in forklift), and a joblib-style backend named by a block is
handed to joblib as it is.

The bridge is also a joblib backend of its own, ``"forklift"``, for joblib code that asks
for it by name; its batches go to a forklift backend (by default forklift's process pool,
``"loky"``; or ``"threading"``, ``"dask"``, ``"ray"``, any registered name)::

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

joblib is imported here and only here, when :func:`register`, :func:`backend_class` or
:func:`route_joblib` runs; nothing else in forklift imports it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any

from forklift.config import Settings, current_settings
from forklift.errors import ConfigurationError, RemoteTraceback
from forklift.parallel.backends import registry
from forklift.parallel.backends.base import Backend, Batch, BatchOutcome
from forklift.parallel.backends.joblib_style import is_joblib_style, is_multiprocessing_context
from forklift.parallel.batching import BatchSizer

__all__ = ["backend_class", "joblib_registered", "register", "route_joblib"]

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


def route_joblib(
    settings: Settings, set_here: frozenset[str]
) -> AbstractContextManager[Any] | None:
    """What entering a ``forklift.parallel_config`` block does for joblib (a config hook).

    Returns a ``joblib.parallel_config`` to hold open with the block, or None when joblib is
    not installed or the block leaves joblib alone.

    Examples:
        scikit-learn's ``n_jobs`` - here joblib's ``Parallel`` - runs on the forklift backend
        the block names:

        >>> import joblib, threading
        >>> from forklift import parallel_config
        >>> with parallel_config(backend="threading", n_jobs=2):
        ...     names = joblib.Parallel()(
        ...         joblib.delayed(lambda: threading.current_thread().name)() for _ in range(2)
        ...     )
        >>> all(name.startswith("forklift-") for name in names)
        True
    """
    joblib = _import_joblib()
    if joblib is None or not hasattr(joblib, "parallel_config"):
        return None  # not installed, or older than joblib 1.3: nothing to route through
    config: dict[str, Any] = {}
    if settings.n_jobs is not None or "n_jobs" in set_here:
        config["n_jobs"] = settings.n_jobs
    # The settings joblib's parallel_config shares with forklift's, when a block set them.
    for name in ("prefer", "require", "verbose"):
        value = getattr(settings, name)
        if value:
            config[name] = value
    choice = settings.backend
    if choice is None and not config:
        return None
    if choice is None or is_multiprocessing_context(choice):
        pass  # no forklift backend named: joblib keeps its own (and its prefer hints)
    elif is_joblib_style(choice) or (isinstance(choice, str) and joblib_registered(choice)):
        config["backend"] = choice  # joblib's own kind of backend: no need for the bridge
    else:
        config["backend"] = backend_class()(
            forklift_backend=choice, **dict(settings.backend_params)
        )
    context: AbstractContextManager[Any] = joblib.parallel_config(**config)
    return context


def _import_joblib() -> ModuleType | None:
    module = sys.modules.get("joblib")
    if module is not None:
        return module
    if importlib.util.find_spec("joblib") is None:
        return None
    return importlib.import_module("joblib")


def joblib_registered(name: str) -> Callable[..., Any] | None:
    """A backend factory from joblib's registry for a name forklift's does not have (a name
    lookup for :func:`forklift.parallel.backends.registry.add_name_lookup`).

    Only a joblib already imported is asked: if it is not, nobody registered anything in it.

    Examples:
        >>> import joblib
        >>> from forklift.integrations.joblib import joblib_registered
        >>> joblib_registered("loky") is None  # a forklift name: forklift's own backend
        True
        >>> joblib.register_parallel_backend("joblib-threads", joblib.parallel.ThreadingBackend)
        >>> joblib_registered("joblib-threads") is joblib.parallel.ThreadingBackend
        True
    """
    joblib_parallel = sys.modules.get("joblib.parallel")
    if joblib_parallel is None or name in registry.known_backend_names():
        return None  # forklift's own names win (see forklift.parallel.backends.registry)
    factory: Callable[..., Any] | None = getattr(joblib_parallel, "BACKENDS", {}).get(name)
    return factory


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
        default_n_jobs = 1

        def __init__(
            self,
            forklift_backend: Any = "loky",
            nesting_level: int | None = None,
            inner_max_num_threads: int | None = None,
            **backend_params: Any,
        ) -> None:
            super().__init__(
                nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads
            )
            self._choice = forklift_backend
            self._params = backend_params
            self._made: Backend | None = None
            self._n_workers = 0
            self._sizer: BatchSizer | None = None
            self._n_batches = 0

        @property
        def _backend(self) -> Backend:
            # Made on first use, not when a parallel_config block makes the bridge: entering
            # a block must not fail (or connect to a cluster) for joblib code never run.
            if self._made is None:
                choice = self._choice
                self._made = (
                    registry.create_backend(choice, dict(self._params))
                    if isinstance(choice, str)
                    else registry.as_backend(choice)
                )
            return self._made

        @property
        def _name(self) -> str:
            return self._backend.name

        @property
        def supports_sharedmem(self) -> bool:
            # joblib swaps in its own threads for require="sharedmem" unless we share memory.
            return self._backend.capabilities.shares_memory

        @property
        def uses_threads(self) -> bool:
            return self._backend.capabilities.shares_memory

        @property
        def _batch_sizer(self) -> BatchSizer:
            if self._sizer is None:
                self._sizer = BatchSizer(self._backend.capabilities.batch_target_seconds)
            return self._sizer

        def effective_n_jobs(self, n_jobs: int | None) -> int:
            if n_jobs == 0:
                raise ConfigurationError("n_jobs == 0 in Parallel has no meaning")
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
            if n_workers == 1 and self._name in ("loky", "threading", "multiprocessing"):
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
            return self._batch_sizer.size

        def batch_completed(self, batch_size: int, duration: float) -> None:
            self._batch_sizer.observe(batch_size, duration)

        def abort_everything(self, ensure_ready: bool = True) -> None:
            self._backend.abort()
            if ensure_ready and self._n_workers:
                self._backend.start(self._n_workers)

        def terminate(self) -> None:
            self._backend.stop(wait=True)
            self._sizer = None

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
