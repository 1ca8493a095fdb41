"""The dask backend: batches run as tasks on a ``dask.distributed`` cluster.

``Parallel(backend="dask")`` uses, in this order: the client passed as ``client=``, a client
of its own connected to ``address=`` (closed when the backend stops), or the current client
(``distributed.get_client()``: the one the user made last, or the worker's own inside a task).

One batch is one dask task running :func:`~forklift.parallel.backends.base.run_batch` on a
worker. Arguments at least ``scatter_threshold`` big (1 MiB by default; numpy arrays, bytes)
are scattered to the cluster once per backend lifetime and every task refers to them by key;
``scatter=False`` turns that off and ``scatter=[obj, ...]`` scatters those objects whatever
their size. Outcomes are relayed as each task finishes (dask's done callbacks), abort cancels
every unfinished task on the cluster, and dask's own failures (``KilledWorker``, a lost
connection, a cancellation forklift did not ask for) become :class:`~forklift.errors.ClusterError`
subclasses with the dask error chained.

A worker that dies under a task is dask's business: the scheduler reruns the task elsewhere,
up to its ``allowed-failures`` limit, and the call goes on.

Imports ``distributed`` only when a backend is made (so this module imports, and its doctests
collect, without dask installed; the registry turns a missing install into
:class:`~forklift.errors.MissingDependencyError`). Never imports the engine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from forklift.errors import (
    ClusterCancelledError,
    ClusterConnectionError,
    ClusterWorkerLostError,
    ConfigurationError,
)
from forklift.parallel.backends._remote import ClusterBackend, Failure, run_packed, translate
from forklift.parallel.backends._shared_arguments import DEFAULT_SHARE_THRESHOLD
from forklift.parallel.backends.base import Batch, BatchOutcome

__all__ = ["DaskBackend", "translate_dask_error"]

logger = logging.getLogger("forklift.parallel")


class DaskBackend(ClusterBackend):
    """Runs batches as tasks on a ``distributed.Client``'s cluster."""

    name = "dask"
    options = ("client", "address", "scatter", "scatter_threshold")

    def __init__(
        self,
        client: Any = None,
        address: str | None = None,
        scatter: bool | list[Any] = True,
        scatter_threshold: int | str | None = DEFAULT_SHARE_THRESHOLD,
        **unknown: Any,
    ) -> None:
        self._reject_unknown(unknown)
        import distributed  # here, not at the top: dask is an optional extra

        self._distributed = distributed
        if client is not None and not isinstance(client, distributed.Client):
            raise ConfigurationError(
                f"the dask backend's client must be a distributed.Client, got {client!r}"
            )
        if client is not None and address is not None:
            raise ConfigurationError("give the dask backend a client or an address, not both")
        self._check_address(address, "a scheduler address such as 'tcp://127.0.0.1:8786'")
        self._given_client = client
        self._address = address
        self._own_client: Any = None
        self._client: Any = None  # the client of the running call, set by start()
        self._seceded = False
        super().__init__(dask_failures, scatter, scatter_threshold)

    # -- the cluster -----------------------------------------------------------------------
    def _find_client(self) -> Any:
        if self._given_client is not None:
            return self._given_client
        if self._address is not None:
            if self._own_client is None:
                try:
                    self._own_client = self._distributed.Client(self._address, set_as_default=False)
                except OSError as error:
                    raise ClusterConnectionError(
                        f"could not connect to the dask scheduler at {self._address!r}: {error}"
                    ) from error
            return self._own_client
        try:
            return self._distributed.get_client()
        except ValueError:
            raise ConfigurationError(
                "backend='dask' needs a dask.distributed client: create one first "
                "(distributed.Client() for a local cluster, Client('tcp://host:8786') for a "
                "running one), or pass client=... or address=... to parallel_config/Parallel"
            ) from None

    def _capacity(self) -> int:
        # One task per worker thread.
        temporary = self._address is not None and self._own_client is None
        client = self._find_client()
        try:
            capacity = int(sum(client.nthreads().values()))
        finally:
            if temporary:
                # Asked before the call (Parallel(...) checks its backend when made): a client
                # opened only for this question must not outlive it.
                self._own_client = None
                client.close()
        return capacity

    def start(self, n_workers: int) -> None:
        if self._client is None:
            self._client = self._find_client()
            self._secede_if_in_task()
        self._tasks.start_sharing(self._scatter, self._threshold, self._forced)

    def _secede_if_in_task(self) -> None:
        """Called from inside a dask task (a nested ``backend="dask"`` call): give the task's
        thread slot back to its worker while this call waits, so the inner tasks can run
        there - otherwise a cluster whose threads all wait on inner calls deadlocks."""
        try:
            self._distributed.get_worker()
        except ValueError:
            return  # not in a worker: the usual case
        try:
            self._distributed.secede()
        except Exception:  # not a task thread after all (e.g. the worker's own loop)
            logger.debug("could not secede from the dask worker", exc_info=True)
            return
        self._seceded = True

    def _scatter(self, value: Any) -> Any:
        # A one-element list, so that a list or dict value is scattered as one object;
        # hash=False because identical values passed separately need not be compared.
        return self._client.scatter([value], hash=False)[0]

    # -- batches ---------------------------------------------------------------------------
    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        # Not started (no client): prepare() raises ParallelStateError.
        payload, handles, key = self._tasks.prepare(batch)
        with self._tasks.failures(key):
            # pure=False: two batches with equal arguments are two tasks.
            task = self._client.submit(run_packed, payload, handles, self.name, key=key, pure=False)
        result, relay = self._tasks.track(task, key, list(handles))
        task.add_done_callback(relay)
        return result

    def abandon(self, future: Future[BatchOutcome]) -> None:
        """Cancel one batch on the cluster (it ran past ``task_timeout``)."""
        task = self._tasks.take(future)
        if task is not None and self._client is not None:
            try:
                self._client.cancel([task])
            except Exception:
                logger.warning("could not cancel a dask task", exc_info=True)

    def abort(self) -> None:
        pending = self._tasks.take_all()
        if pending and self._client is not None:
            try:
                self._client.cancel(pending)
            except Exception:  # a lost cluster cannot be told; its tasks are gone anyway
                logger.warning("could not cancel %d dask tasks", len(pending), exc_info=True)

    def stop(self, wait: bool = True) -> None:
        self.abort()
        self._client = None
        if self._seceded:
            self._seceded = False
            self._distributed.rejoin()  # the task goes on: take a thread slot again
        own, self._own_client = self._own_client, None
        if own is not None:
            own.close()

    def __repr__(self) -> str:
        return f"DaskBackend(client={self._given_client or self._address or 'current'})"


@functools.cache
def dask_failures() -> Sequence[Failure]:
    """dask's own failures, as forklift's errors (first match wins; see ``_remote``)."""
    import distributed.client
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    closed_client: Any = getattr(distributed.client, "ClosedClientError", None)  # >= 2023.4
    rows: list[Failure] = [
        (
            (KilledWorker,),
            ClusterWorkerLostError,
            "dask gave up on a batch{where}: workers kept dying while running it "
            "(distributed.scheduler.allowed-failures reached). A task may crash its worker "
            "(segfault, out of memory) or the cluster is losing workers.",
        ),
        (
            (concurrent.futures.CancelledError, asyncio.CancelledError),
            ClusterCancelledError,
            "dask cancelled a batch{where} that forklift did not cancel (was the client "
            "closed or restarted during the call?)",
        ),
    ]
    if closed_client is not None:
        rows.append(
            (
                (closed_client,),
                ClusterConnectionError,
                "the dask client was closed before or during the call{where}; make a new "
                "Client, or keep it open until the Parallel call returns",
            )
        )
    rows.append(
        (
            (CommClosedError, OSError),
            ClusterConnectionError,
            "lost the connection to the dask cluster while running a batch{where}: {error}",
        )
    )
    return tuple(rows)


def translate_dask_error(error: BaseException, key: str = "") -> BaseException:
    """forklift's error for a failure of dask itself (never a task's own error)."""
    return translate("dask", dask_failures(), error, key)
