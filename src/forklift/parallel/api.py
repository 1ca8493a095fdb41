"""``Parallel``, ``delayed`` and ``effective_n_jobs``: joblib's API on forklift's engine.

``Parallel`` validates its arguments when it is made, resolves the settings in force (see
:mod:`forklift.config`), and for each call picks a backend (:mod:`.selection`), builds a
:class:`~forklift.parallel.engine.RunPlan` and lets the engine run it. As a context manager
it keeps one started backend - and so its workers - across calls.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
import threading
import types
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence, Sized
from types import TracebackType
from typing import Any, Final, Generic, Literal, ParamSpec, TypeVar

from forklift.config import (
    DEFAULT_MAX_NBYTES,
    DEFAULT_MMAP_MODE,
    DEFAULT_VERBOSE,
    Settings,
    default,
    resolve_settings,
)
from forklift.errors import ConfigurationError, InvalidTaskError, ParallelStateError
from forklift.parallel.backends.base import Backend, Call
from forklift.parallel.engine import execute
from forklift.parallel.plan import CallOptions, ReturnAs, plan_run
from forklift.parallel.resilience import Checkpoint, Resilience
from forklift.parallel.retries import as_retry_policy
from forklift.parallel.selection import Selection, select_backend
from forklift.progress.bar import ProgressBarLike
from forklift.progress.events import Event, Reporter
from forklift.progress.options import ObservationOptions

__all__ = ["Parallel", "delayed", "effective_n_jobs"]

P = ParamSpec("P")
R = TypeVar("R")
_MISSING: Final[Any] = object()


class _DelayedFunction(Generic[P, R]):
    """``delayed(f)``: calling it records the call as ``(f, args, kwargs)`` instead of running."""

    __slots__ = ("__wrapped__",)

    def __init__(self, function: Callable[P, R]) -> None:
        self.__wrapped__ = function

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Call:
        return (self.__wrapped__, args, kwargs)

    @property
    def __name__(self) -> str:
        return getattr(self.__wrapped__, "__name__", type(self.__wrapped__).__name__)

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        return getattr(self.__wrapped__, "__doc__", None)

    def __repr__(self) -> str:
        return f"delayed({self.__wrapped__!r})"


def delayed(function: Callable[P, R]) -> _DelayedFunction[P, R]:
    """Wrap ``function`` so that calling it returns the call ``(function, args, kwargs)``.

    Examples:
        >>> from forklift import delayed
        >>> delayed(pow)(2, 10)
        (<built-in function pow>, (2, 10), {})
        >>> delayed(sorted)([3, 1, 2], reverse=True)
        (<built-in function sorted>, ([3, 1, 2],), {'reverse': True})
    """
    last = _last_delayed
    if last[0] is function:
        return last[1]  # type: ignore[no-any-return]
    if not callable(function):
        raise InvalidTaskError(
            f"delayed() needs a callable (a function, method or callable object), got "
            f"{function!r} of type {type(function).__name__}"
        )
    wrapper = _DelayedFunction(function)
    if _held_by_its_module(function):
        _remember(function, wrapper)
    return wrapper


# ``delayed(f)(x) for x in xs`` calls delayed(f) once per task: handing back the wrapper made
# for the same ``f`` last time saves a third of the generator's cost (20,000 calls: ~9.5 ms
# -> ~6.2 ms). Only a function its module holds anyway is remembered, so the cache keeps no
# closure or large default alive (rejected: a weak reference - the wrapper holds ``f``, so
# the entry would never die - and caching every function, which would).
_last_delayed: tuple[Any, Any] = (object(), None)


def _remember(function: Any, wrapper: _DelayedFunction[Any, Any]) -> None:
    global _last_delayed
    _last_delayed = (function, wrapper)  # one tuple assignment: atomic across threads


def _held_by_its_module(function: Any) -> bool:
    """A plain or builtin function found under its own name in its module's namespace (read
    directly: no user ``__getattr__``, of the function's module or of a callable object, runs
    here)."""
    if type(function) not in _PLAIN_FUNCTIONS:
        return False
    module_name, name = function.__module__, function.__qualname__
    if not isinstance(module_name, str) or not isinstance(name, str):
        return False
    module = sys.modules.get(module_name)
    namespace = getattr(module, "__dict__", None)  # a module's: no __getattr__ runs
    return isinstance(namespace, dict) and namespace.get(name) is function


_PLAIN_FUNCTIONS: Final = (types.FunctionType, types.BuiltinFunctionType)


def effective_n_jobs(n_jobs: int = -1) -> int:
    """The number of workers ``n_jobs`` means for the backend in force (``-1``: all CPUs).

    Examples:
        >>> from forklift import cpu_count, effective_n_jobs, parallel_config
        >>> effective_n_jobs(-1) == cpu_count()
        True
        >>> with parallel_config(backend="threading", n_jobs=2):
        ...     effective_n_jobs(None), effective_n_jobs(3)
        (2, 3)
    """
    settings = resolve_settings(n_jobs=n_jobs)
    return select_backend(settings, explicit_backend=False).n_workers


class Parallel:
    """Run an iterable of delayed calls in parallel and collect their results.

    Parameters follow joblib's ``Parallel``: ``n_jobs`` (None: configured, else 1; -1 all
    CPUs), ``backend`` (a name; a backend instance, forklift's or one written for joblib; or a
    ``multiprocessing`` context), ``return_as`` ("list", "generator" or
    "generator_unordered"), ``verbose``, ``timeout`` (seconds for the whole call),
    ``pre_dispatch`` (batches kept in flight: int, "all" or an expression in ``n_jobs``),
    ``batch_size`` ("auto" or int), ``temp_folder``, ``max_nbytes``, ``mmap_mode``,
    ``prefer`` ("processes"/"threads" hint), ``require`` ("sharedmem"), and backend
    keyword arguments. Use it as a context manager to keep its workers across calls.

    forklift's own, keyword-only in spirit (joblib has none of them):

    * ``progress``: True draws a progress bar of completed tasks with rate and time left on
      stderr (tqdm when installed; plain lines when stderr is not a terminal); or pass your
      own bar object with ``update(n)``, ``close()`` and ``total`` (e.g. a ``tqdm``).
    * ``reporters``: objects with ``handle(event)``, or callables taking an event, that
      receive the run's events (see :mod:`forklift.progress.events`) in the caller's thread.
    * ``trace``: a path ending in ``.html`` (a self-contained timeline page) or ``.json``
      (Chrome trace events, for Perfetto) written when each call ends: each task's worker,
      start, end and outcome.
    * ``retries``, ``retry_on``, ``retry_backoff``: run a failed task again up to ``retries``
      times (only for the exception types in ``retry_on``, default any ``Exception``),
      waiting ``retry_backoff`` seconds before the first retry and twice as long before each
      next one. A worker that dies under a task, or a task past ``task_timeout``, is a
      failure of that task, retried on a fresh worker.
    * ``on_error``: ``"raise"`` (joblib's behaviour) or ``"return"``: a
      :class:`~forklift.parallel.failures.TaskFailure` (exception, traceback, call) takes the
      failed task's place and every success is kept; a summary is logged at the end.
    * ``task_timeout``: seconds one task may run; past it the task is stopped (on processes
      its worker is killed, the others go on; on threads it is abandoned) and fails with
      :class:`~forklift.errors.TaskTimeoutError`. Tasks then run one per batch.
    * ``checkpoint``: a :class:`~forklift.Memory`; each finished task's result is stored, and
      rerunning the same call (after a crash or Ctrl-C) restores those instead of
      recomputing them.
    * ``seed``: gives every task its own random stream, from the seed and the task's
      position - :func:`forklift.task_rng` - so results do not depend on ``n_jobs``, the
      backend or which worker ran what.

    Examples:
        >>> from forklift import Parallel, delayed
        >>> Parallel(n_jobs=2, backend="threading")(delayed(pow)(i, 2) for i in range(5))
        [0, 1, 4, 9, 16]

        A reporter sees the run's events:

        >>> seen = []
        >>> parallel = Parallel(n_jobs=2, backend="threading", reporters=[seen.append])
        >>> parallel(delayed(abs)(-i) for i in range(4))
        [0, 1, 2, 3]
        >>> type(seen[0]).__name__, type(seen[-1]).__name__, seen[-1].n_completed
        ('RunStarted', 'RunFinished', 4)

        A ``with`` block keeps the workers for several calls:

        >>> with Parallel(n_jobs=2, backend="threading") as parallel:
        ...     first = parallel(delayed(len)(word) for word in ["a", "bb"])
        ...     second = parallel(delayed(str.upper)(word) for word in ["a", "bb"])
        >>> first, second
        ([1, 2], ['A', 'BB'])
    """

    def __init__(
        self,
        n_jobs: int | None = None,
        backend: str | Backend | Any = None,
        return_as: ReturnAs = "list",
        verbose: int = default(DEFAULT_VERBOSE),
        timeout: float | None = None,
        pre_dispatch: int | str = "2 * n_jobs",
        batch_size: int | str = "auto",
        temp_folder: str | None = None,
        max_nbytes: int | str | None = default(DEFAULT_MAX_NBYTES),
        mmap_mode: str | None = default(DEFAULT_MMAP_MODE),
        prefer: str | None = None,
        require: str | None = None,
        *,
        progress: bool | ProgressBarLike = False,
        reporters: Iterable[Reporter | Callable[[Event], Any]] | None = None,
        trace: str | os.PathLike[str] | None = None,
        retries: int = 0,
        retry_on: type[BaseException] | Sequence[type[BaseException]] | None = None,
        retry_backoff: float = 0.0,
        on_error: Literal["raise", "return"] = "raise",
        task_timeout: float | None = None,
        checkpoint: Checkpoint | None = None,
        seed: int | None = None,
        **backend_kwargs: Any,
    ) -> None:
        # Every argument, by name: listed once, in the signature (_with_overrides makes a
        # changed copy from them). Those that are settings go through resolve_settings.
        passed = locals()  # (a comprehension has its own locals(): take them here)
        named = {name: passed[name] for name in _PARAMETERS}
        self._arguments: dict[str, Any] = {**named, **backend_kwargs}
        self._options = CallOptions.check(
            return_as,
            timeout,
            pre_dispatch,
            batch_size,
            observation=ObservationOptions.check(progress, reporters, trace),
            resilience=Resilience(
                retry=as_retry_policy(retries, retry_on, retry_backoff),
                on_error=on_error,
                task_timeout=task_timeout,
                checkpoint=checkpoint,
                seed=seed,
            ),
        )
        self._explicit_backend = backend is not None
        self._backend_kwargs = backend_kwargs
        self._settings = resolve_settings(
            **{name: value for name, value in named.items() if name in _SETTING_NAMES}
        )
        # Made now so that an unknown backend name or parameter fails where it was written;
        # the first call (or with-block) uses this backend rather than making another.
        self._unused: Selection | None = self._select()
        self._running = threading.Lock()
        self._kept: Selection | None = None  # the started backend of a with-block
        self._borrowed = False  # _kept belongs to another Parallel (see _with_overrides)
        self._closed = False

    @property
    def n_jobs(self) -> int | None:
        return self._settings.n_jobs

    @property
    def verbose(self) -> int:
        return int(self._settings.verbose)

    @property
    def return_as(self) -> str:
        return self._options.return_as

    def __repr__(self) -> str:
        return f"Parallel(n_jobs={self._settings.n_jobs})"

    # -- context manager: keep workers across calls -------------------------------------
    def __enter__(self) -> Parallel:
        self._check_usable()
        if self._kept is None:
            self._kept = self._take_selection()
            self._kept.backend.start(self._kept.n_workers)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        kept, self._kept = self._kept, None
        self._closed = True
        if kept is not None and not self._borrowed:
            kept.backend.stop(wait=exc_type is None)

    # -- calling -------------------------------------------------------------------------
    def __call__(self, iterable: Iterable[Any] = _MISSING, **overrides: Any) -> Any:
        """Run the calls of ``iterable``; return a list or a generator per ``return_as``.

        Called with keyword arguments only (``parallel(n_jobs=2, verbose=1)``), it returns a
        ``Parallel`` with those arguments changed that shares this one's workers when it can.
        """
        if iterable is _MISSING:
            if not overrides:
                raise InvalidTaskError(
                    "Parallel(...) must be called with an iterable of delayed calls"
                )
            return self._with_overrides(overrides)
        if overrides:
            raise ConfigurationError(
                f"pass {sorted(overrides)} to Parallel(...) itself, not to its call"
            )
        self._check_usable()
        as_list = self._options.return_as == "list"
        chunks = self._chunks(iterable, _length(iterable), consumer_inside=as_list)
        if as_list:
            results: list[Any] = []
            for chunk in chunks:
                results.extend(chunk)
            return results
        next(chunks)  # start the work now, as joblib does; results come when asked for
        return _flatten(chunks)

    def _chunks(
        self,
        iterable: Iterable[Any],
        expected_total: int | None = None,
        *,
        consumer_inside: bool = False,
    ) -> Iterator[list[Any]]:
        if not self._running.acquire(blocking=False):
            raise ParallelStateError(
                # "This Parallel instance is already running" is joblib's phrase.
                "This Parallel instance is already running a call (perhaps a generator from an "
                "earlier call that was not exhausted or closed); wait for it, or make a new "
                "Parallel"
            )
        try:
            self._check_usable()
            selection = self._kept if self._kept is not None else self._take_selection()
            owned = self._kept is None
            backend = selection.backend
            interrupted = True
            try:
                backend.start(selection.n_workers)
                plan = plan_run(self._options, selection, self._settings, expected_total)
                yield from execute(plan, iterable, consumer_inside=consumer_inside)
                interrupted = False
            except Exception:
                interrupted = False  # a task error: let running work wind down cleanly
                raise
            finally:
                if owned:
                    backend.stop(wait=not interrupted)
        finally:
            self._running.release()

    # -- helpers ---------------------------------------------------------------------------
    def _check_usable(self) -> None:
        if self._closed:
            raise ParallelStateError(
                "this Parallel was closed when its with-block ended; call it inside the block "
                "or make a new Parallel(...)"
            )

    def _take_selection(self) -> Selection:
        """The backend made when this Parallel was, the first time; a new one after."""
        selection, self._unused = self._unused, None
        return selection if selection is not None else self._select()

    def _select(self) -> Selection:
        return select_backend(
            self._settings,
            explicit_backend=self._explicit_backend,
            backend_params=self._backend_kwargs,
        )

    def _with_overrides(self, overrides: dict[str, Any]) -> Parallel:
        derived = Parallel(**{**self._arguments, **overrides})
        if self._kept is not None:
            candidate = derived._unused
            if (
                candidate is not None
                and type(candidate.backend) is type(self._kept.backend)
                and candidate.n_workers == self._kept.n_workers
            ):
                # Borrow this one's started workers; the borrower never stops them.
                derived._kept = Selection(self._kept.backend, candidate.n_workers, derived.n_jobs)
                derived._borrowed = True
        return derived


# Parallel's parameters, from its signature: the one list of them.
_PARAMETERS: Final = tuple(
    name
    for name, parameter in inspect.signature(Parallel).parameters.items()
    if parameter.kind is not inspect.Parameter.VAR_KEYWORD  # not **backend_kwargs
)
_SETTING_NAMES: Final = frozenset(field.name for field in dataclasses.fields(Settings))


def _flatten(chunks: Iterator[list[Any]]) -> Generator[Any, None, None]:
    try:
        for chunk in chunks:
            yield from chunk
    finally:
        # Closing the results early closes the run too (aborting what is in flight).
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _length(iterable: Iterable[Any]) -> int | None:
    """``len(iterable)`` when it has a cheap, honest one (lists, tuples, ranges...)."""
    if not isinstance(iterable, Sized):
        return None
    try:
        length = len(iterable)
    except Exception:
        return None
    return length if isinstance(length, int) and length >= 0 else None
