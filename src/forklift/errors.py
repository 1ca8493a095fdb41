"""forklift's exceptions and warnings: one tree, rooted at :class:`ForkliftError`.

Each error also derives from the built-in exception a joblib user would catch for the
same situation, so ``except ValueError`` keeps working after switching imports::

    ForkliftError (Exception)
    ├── ConfigurationError (ValueError)          bad n_jobs, return_as, prefer, ...
    │   ├── UnknownBackendError                   names the backends that do exist
    │   └── MissingDependencyError (+ImportError) an optional extra is not installed;
    │                                             says which ``pip install forklift[...]``
    ├── InvalidTaskError (TypeError)              an item that is not a delayed call
    ├── ParallelStateError (RuntimeError)         calling a closed or running Parallel
    ├── ParallelTimeoutError (TimeoutError)       the whole call ran past ``timeout``
    ├── TerminatedWorkerError (BrokenProcessPool) a worker process died under a task
    └── ClusterError (RuntimeError)               dask or ray could not run a batch
        ├── ClusterWorkerLostError (+TerminatedWorkerError)  workers kept dying under it
        ├── ClusterConnectionError (+ConnectionError)        lost touch with the cluster
        └── ClusterCancelledError                 the cluster cancelled it, not forklift

    RemoteTraceback (Exception)                   carried as ``__cause__`` of a task's
                                                  error: the traceback where it ran

    ForkliftWarning (UserWarning)

This module imports nothing from forklift; every other room may import it.
"""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool

__all__ = [
    "ClusterCancelledError",
    "ClusterConnectionError",
    "ClusterError",
    "ClusterWorkerLostError",
    "ConfigurationError",
    "ForkliftError",
    "ForkliftWarning",
    "InvalidTaskError",
    "MissingDependencyError",
    "ParallelStateError",
    "ParallelTimeoutError",
    "RemoteTraceback",
    "TerminatedWorkerError",
    "UnknownBackendError",
]


class ForkliftError(Exception):
    """Root of every error forklift raises on its own account."""


class ConfigurationError(ForkliftError, ValueError):
    """A parameter has a value forklift cannot use; the message says which and why."""


class UnknownBackendError(ConfigurationError):
    """A backend name that nobody registered; the message lists the known names."""


class InvalidTaskError(ForkliftError, TypeError):
    """An item of the task iterable is neither ``delayed(f)(...)`` nor ``(f, args, kwargs)``."""


class ParallelStateError(ForkliftError, RuntimeError):
    """A :class:`~forklift.Parallel` was used while closed or while already running."""


class ParallelTimeoutError(ForkliftError, TimeoutError):
    """A :class:`~forklift.Parallel` call did not finish within its ``timeout``."""


class TerminatedWorkerError(ForkliftError, BrokenProcessPool):
    """A worker process died while running a task (signal, segfault, ``os._exit``)."""


class RemoteTraceback(Exception):
    """The formatted traceback of a task's error, as it was where the task ran.

    forklift re-raises a task's exception with its own type in the caller and chains this
    object as its ``__cause__``, so the printed traceback shows both sides.
    """

    def __init__(self, traceback_text: str) -> None:
        super().__init__(traceback_text)
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return "\n" + self.traceback_text.rstrip("\n")


class ForkliftWarning(UserWarning):
    """Root of forklift's warnings."""


class MissingDependencyError(ConfigurationError, ImportError):
    """A feature needs an optional extra that is not installed; the message names the extra.

    It is an ``ImportError`` too, so code that probes for an optional backend with
    ``except ImportError`` keeps working.
    """


class ClusterError(ForkliftError, RuntimeError):
    """A cluster engine (dask.distributed, ray) failed to run a batch, for its own reasons.

    The engine's original exception is chained as ``__cause__``. A task's own error is never
    wrapped in this: it re-raises with its own type.
    """


class ClusterWorkerLostError(ClusterError, TerminatedWorkerError):
    """Cluster workers kept dying while running a batch, and the engine gave up retrying it."""


class ClusterConnectionError(ClusterError, ConnectionError):
    """The connection to the cluster's scheduler or workers was lost during the call."""


class ClusterCancelledError(ClusterError):
    """The cluster cancelled a batch that forklift did not cancel (e.g. a client restart)."""
