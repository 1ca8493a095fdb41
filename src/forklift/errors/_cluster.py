"""The errors of a cluster engine (dask.distributed, ray) failing a call on its own account.

A task's own error is never one of these: it re-raises with its own type. The engine's
translation of its own exceptions into these lives with the backends
(``forklift.parallel.backends._remote``), one table per engine.
"""

from __future__ import annotations

from forklift.errors._base import ForkliftError
from forklift.errors._running import TerminatedWorkerError

__all__ = [
    "ClusterCancelledError",
    "ClusterConnectionError",
    "ClusterError",
    "ClusterWorkerLostError",
]


class ClusterError(ForkliftError, RuntimeError):
    """A cluster engine (dask.distributed, ray) failed to run a batch, for its own reasons.

    The engine's original exception is chained as ``__cause__``; the field ``engine`` names
    the engine (``"dask"``, ``"ray"``) and ``task_key`` the engine's name for the batch's
    task, each ``None`` when not known. One ``except ClusterError`` covers every way a
    cluster can fail a call; the subclasses below tell the ways apart.
    """

    def __init__(
        self, message: str = "", *, engine: str | None = None, task_key: str | None = None
    ) -> None:
        super().__init__(message)
        self.engine = engine
        self.task_key = task_key


class ClusterWorkerLostError(ClusterError, TerminatedWorkerError):
    """Cluster workers kept dying while running a batch, and the engine gave up retrying it.

    It is a :class:`TerminatedWorkerError` too, so code written for local processes catches it.
    """


class ClusterConnectionError(ClusterError, ConnectionError):
    """The connection to the cluster's scheduler or workers was lost during the call."""


class ClusterCancelledError(ClusterError):
    """The cluster cancelled a batch that forklift did not cancel (e.g. a client restart)."""
