"""What the cluster backends (dask, ray) share: a batch's trip to a worker and back, the
batches in flight, and the translation of the engine's own failures.

A batch bound for a cluster travels as cloudpickle bytes, so lambdas, closures and functions
defined in ``__main__`` work, and its outcome comes back as bytes too. Large arguments are
shared apart (:mod:`._shared_arguments`)::

    caller                                                   cluster worker
    ClusterTasks.prepare: LargeArguments.extract,
        pack_batch (bytes), a fresh task key  -- engine -->  run_packed: placeholders back,
                                                             run_batch, the error packed,
    ClusterTasks.relay (engine's done callback) <-- bytes -- the outcome pickled
        unpack_outcome -> the batch's Future settles,
        or the engine's failure -> a ClusterError (the engine's table)

**A task's error travels as the process pool's do** (:mod:`forklift.pool.error_transport`):
packed in the worker, it is rebuilt in the caller with its own class - one defined in the
caller's script included, which arrives as the caller's own class -, its attributes and its
chain, and results of ``__main__`` classes arrive as the caller's classes
(:mod:`forklift.pool.main_classes`). Rejected: pickling the outcome whole, as before: an
exception whose ``__init__`` takes other arguments failed to unpickle in the caller and
arrived as a ``ClusterError``, one with an unpicklable attribute as a ``RuntimeError``.

**An engine's failures (never a task's) are data**: each backend gives a table of rows
``(engine exception classes, forklift class, message)``, first match wins, and
:func:`engine_failures` (a context manager around every call into the engine) or the relay
turns an engine exception into that forklift class with the engine's error chained. The table
is built on first use, since the engines are optional imports.

**What every cluster backend does alike** is :class:`ClusterBackend`, their base: the unknown
option check, the ``scatter``/``scatter_threshold`` options, the batches in flight, and
``n_jobs=-1`` as the cluster's capacity. What differs between engines stays in their
backends: finding the cluster and its capacity, putting a value, submitting a task,
cancelling. Rejected: a ``Protocol`` plus a helper per shared step (each backend still wrote
the same ``__init__`` lines, properties and capacity arithmetic).

This module imports neither dask nor ray, and never the engine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pickle
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from functools import partial
from typing import Any, Generic, TypeVar

import cloudpickle

from forklift._support.cpus import workers_for_n_jobs
from forklift.errors import (
    ClusterError,
    ConfigurationError,
    ForkliftError,
    ParallelStateError,
)
from forklift.parallel.backends._shared_arguments import (
    LargeArguments,
    Placeholder,
    parse_share_options,
)
from forklift.parallel.backends.base import (
    BackendCapabilities,
    Batch,
    BatchOutcome,
    Call,
    describe_call,
    run_batch,
)
from forklift.parallel.backends.base import pack_outcome as base_pack_outcome
from forklift.pool.main_classes import dumps as dumps_for_caller

__all__ = [
    "CLUSTER_CAPABILITIES",
    "ClusterBackend",
    "ClusterTasks",
    "Failure",
    "engine_failures",
    "pack_batch",
    "pack_outcome",
    "run_packed",
    "translate",
    "unpack_outcome",
]

# What a cluster backend is to the engine. A dask task costs a few milliseconds of scheduling
# and transfer, a ray task a millisecond or more end to end: batches of 0.2 s keep that under
# a few percent while leaving enough batches to balance load.
CLUSTER_CAPABILITIES = BackendCapabilities(
    uses_processes=True,
    persistent_workers=True,
    batch_target_seconds=0.2,
    nested_backend="sequential",
    default_n_jobs=-1,
)

Task = TypeVar("Task")  # the engine's handle for a submitted batch (dask Future, ray ObjectRef)

Failure = tuple[tuple[type[BaseException], ...], type[ClusterError], str]
"""A row of an engine's error table: the engine's exception classes, forklift's class, and
the message, where ``{engine}``, ``{where}`` (`` (dask task KEY)`` or nothing) and
``{error}`` are filled in."""

_UNMATCHED: Failure = ((), ClusterError, "{engine} failed to run a batch{where}: {error!r}")


def translate(
    engine: str, table: Sequence[Failure], error: BaseException, key: str = ""
) -> ClusterError:
    """forklift's error for a failure of the engine itself: the first row that matches."""
    kind, message = next(
        ((kind, message) for classes, kind, message in table if isinstance(error, classes)),
        _UNMATCHED[1:],
    )
    where = f" ({engine} task {key})" if key else ""
    text = message.format(engine=engine, where=where, error=error)
    translated = kind(text, engine=engine, task_key=key or None)
    translated.__cause__ = error
    return translated


@contextlib.contextmanager
def engine_failures(
    engine: str, table: Callable[[], Sequence[Failure]], key: str = ""
) -> Iterator[None]:
    """Around a call into the engine: its exceptions leave as forklift's (see the table);
    forklift's own errors (a bad option found on the way) pass unchanged."""
    try:
        yield
    except ForkliftError:
        raise
    except Exception as error:
        raise translate(engine, table(), error, key) from error


# -- the trip: caller -> worker -> caller ------------------------------------------------------
def pack_batch(batch: Batch, calls: list[Call]) -> bytes:
    """``batch`` with ``calls`` in place of its own, as bytes for the trip to a worker."""
    shipped = dataclasses.replace(batch, calls=calls)
    return bytes(cloudpickle.dumps(shipped))


def run_packed(payload: bytes, values: Mapping[str, Any], worker_of: str) -> bytes:
    """Worker side: unpack a batch, put the shared values back, run it, pack the outcome."""
    batch: Batch = pickle.loads(payload)
    if values:
        batch.calls = [
            (
                function,
                tuple(values[a.key] if isinstance(a, Placeholder) else a for a in args),
                {
                    name: values[v.key] if isinstance(v, Placeholder) else v
                    for name, v in kwargs.items()
                },
            )
            for function, args, kwargs in batch.calls
        ]
    return pack_outcome(batch, run_batch(batch, worker_of=worker_of))


def pack_outcome(batch: Batch, outcome: BatchOutcome) -> bytes:
    """Worker side: ``outcome`` as bytes for the caller, ``__main__`` classes made the
    caller's (the rest: :func:`~forklift.parallel.backends.base.pack_outcome`)."""
    return base_pack_outcome(batch, outcome, dumps_for_caller)


def unpack_outcome(payload: bytes) -> BatchOutcome:
    outcome: BatchOutcome = pickle.loads(payload)
    return outcome


# -- the batches in flight ---------------------------------------------------------------------
class ClusterTasks(Generic[Task]):
    """The batches a cluster backend has in flight: each one's engine task and key, the
    local future the engine waits on, and the relay from the engine's callback to it; and
    the large arguments they share, from :meth:`start_sharing` to :meth:`take_all`."""

    def __init__(self, engine: str, table: Callable[[], Sequence[Failure]]) -> None:
        self.engine = engine
        self.table = table
        self._pending: dict[int, tuple[Task, str]] = {}  # id(local future) -> (task, key)
        self._lock = threading.Lock()
        self._large: LargeArguments[Any] | None = None

    def start_sharing(
        self, share: Callable[[Any], Any], threshold: int | None, always: list[Any]
    ) -> None:
        """Share large arguments with ``share`` (the engine's put) from now until
        :meth:`take_all`; kept across calls of one ``with Parallel(...)`` block."""
        if self._large is None:
            self._large = LargeArguments(share, threshold, always)

    @property
    def n_shared(self) -> int:
        """How many objects were shared since sharing started (for tests and logs)."""
        return 0 if self._large is None else self._large.n_shared

    @property
    def started(self) -> bool:
        return self._large is not None

    def failures(self, key: str = "") -> contextlib.AbstractContextManager[None]:
        """:func:`engine_failures` for this engine."""
        return engine_failures(self.engine, self.table, key)

    def prepare(self, batch: Batch) -> tuple[bytes, dict[str, Any], str]:
        """``(payload, handles of the shared arguments it needs, a fresh task key)``."""
        if self._large is None:
            raise ParallelStateError(f"the {self.engine} backend was not started")
        with self.failures():  # sharing talks to the cluster: its failure, not the task's
            calls, handles = self._large.extract(batch.calls)
        payload = pack_batch(batch, calls)  # a task that cannot be pickled: the user's error
        # A fresh key: two batches with equal arguments are two tasks.
        key = f"forklift-{describe_call(batch.calls[0])}-{uuid.uuid4().hex}"
        return payload, handles, key

    def track(
        self, task: Task, key: str, used: list[str]
    ) -> tuple[Future[BatchOutcome], Callable[[Any], None]]:
        """The batch's local future (running: from here the batch is the cluster's, and for
        ``task_timeout`` its clock runs), and the callback to give the engine's done
        callbacks; it is called with a finished future whose ``result()`` is the bytes."""
        result: Future[BatchOutcome] = Future()
        with self._lock:
            self._pending[id(result)] = (task, key)
        result.set_running_or_notify_cancel()
        assert self._large is not None  # prepare() made sure
        return result, partial(self._relay, result, self._large, used)

    def _relay(
        self,
        result: Future[BatchOutcome],
        large: LargeArguments[Any],
        used: list[str],
        done: Any,
    ) -> None:
        """Runs in the engine's callback thread when a task finishes, fails or is cancelled."""
        with self._lock:
            _, key = self._pending.pop(id(result), (None, ""))
        if used:
            large.release(used)
        if result.done():
            return  # the engine cancelled it already
        try:
            outcome = unpack_outcome(done.result())
        except BaseException as error:
            _settle(result, error=translate(self.engine, self.table(), error, key))
        else:
            _settle(result, outcome=outcome)

    def take(self, future: Future[BatchOutcome]) -> Task | None:
        """Forget one batch (to cancel it): its engine task, if it is still in flight."""
        with self._lock:
            entry = self._pending.pop(id(future), None)
        return None if entry is None else entry[0]

    def take_all(self) -> list[Task]:
        """Forget every batch in flight (to cancel them) and every shared object (the engine
        frees them once no handle refers to them): the batches' engine tasks."""
        with self._lock:
            tasks = [task for task, _ in self._pending.values()]
            self._pending.clear()
        if self._large is not None:
            self._large.clear()
            self._large = None
        return tasks


def _settle(
    result: Future[BatchOutcome],
    outcome: BatchOutcome | None = None,
    error: BaseException | None = None,
) -> None:
    try:
        if error is not None:
            result.set_exception(error)
        else:
            assert outcome is not None
            result.set_result(outcome)
    except InvalidStateError:  # cancelled by the engine meanwhile: nobody waits for it
        pass


# -- what every cluster backend does alike ---------------------------------------------------
class ClusterBackend:
    """The base of the cluster backends (see the module docstring): a subclass sets
    :attr:`name` and :attr:`options`, calls :meth:`_reject_unknown` first thing and this
    ``__init__`` once its own options are checked, and gives :meth:`_capacity`."""

    name: str
    options: tuple[str, ...]  # the keyword arguments it takes, for the unknown-option error
    capabilities = CLUSTER_CAPABILITIES

    def __init__(
        self,
        table: Callable[[], Sequence[Failure]],
        scatter: bool | list[Any],
        scatter_threshold: int | str | None,
    ) -> None:
        self._threshold, self._forced = parse_share_options(self.name, scatter_threshold, scatter)
        self._tasks: ClusterTasks[Any] = ClusterTasks(self.name, table)

    def _reject_unknown(self, unknown: Mapping[str, Any]) -> None:
        if unknown:
            raise ConfigurationError(
                f"the {self.name} backend does not take {sorted(unknown)}; it takes "
                f"{', '.join(self.options)}"
            )

    def _check_address(self, address: object, such_as: str) -> None:
        """Every cluster backend may be given its cluster's address: a string, or None."""
        if address is not None and not isinstance(address, str):
            raise ConfigurationError(
                f"the {self.name} backend's address must be {such_as}, got {address!r}"
            )

    def _capacity(self) -> int:
        """How many tasks the cluster runs at once (what ``n_jobs=-1`` means)."""
        raise NotImplementedError

    def effective_n_jobs(self, n_jobs: int) -> int:
        # A positive n_jobs asks nothing of the cluster (Parallel checks it when made).
        return n_jobs if n_jobs > 0 else workers_for_n_jobs(n_jobs, self._capacity())

    @property
    def n_scattered(self) -> int:
        """How many objects this backend shared with the cluster since it started (scattered
        by dask, put in ray's object store; for tests and logs)."""
        return self._tasks.n_shared
