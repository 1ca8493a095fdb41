"""forklift's exceptions and warnings: one tree, rooted at :class:`ForkliftError`.

Each error also derives from the built-in exception a joblib user would catch for the
same situation, so ``except ValueError`` keeps working after switching imports::

    ForkliftError (Exception)
    ├── ConfigurationError (ValueError)          bad n_jobs, return_as, prefer, ...
    │   ├── UnknownBackendError                   names the backends that do exist
    │   ├── UnknownHashError                      names the hash_name values that do exist
    │   ├── UnknownCompressorError                ``compress`` names no registered codec
    │   └── MissingDependencyError (+ImportError) an optional extra is not installed;
    │                                             says which ``pip install forklift[...]``
    ├── InvalidTaskError (TypeError)              an item that is not a delayed call
    ├── ParallelStateError (RuntimeError)         calling a closed or running Parallel
    ├── ParallelTimeoutError (TimeoutError)       the whole call ran past ``timeout``
    ├── TaskTimeoutError (TimeoutError)           one task ran past ``task_timeout``
    ├── TerminatedWorkerError (BrokenProcessPool) a worker process died under a task
    ├── TaskPicklingError (PicklingError)         a task's arguments or result do not pickle
    ├── WorkerStartError (BrokenProcessPool)      workers cannot start (initializer failed)
    ├── TempSpaceError (OSError)                  no room in the temp folder for a large
    │                                             array; names the folder and the size
    ├── HashingError (PicklingError)              hash() met an object it cannot encode
    ├── PersistError                              dump/load failures
    │   ├── CorruptFileError (UnpicklingError)    truncated/damaged file; names the file
    │   ├── UnsafeLoadError (UnpicklingError)     restricted load met a global not allowed
    │   ├── UnsupportedFormatError (ValueError)   newer format version, unknown legacy layout
    │   └── CompressorUnavailableError (ImportError) codec's optional package missing
    ├── CacheEntryDamagedError                    a cache entry cannot be read back
    └── ClusterError (RuntimeError)               dask or ray could not run a batch
        ├── ClusterWorkerLostError (+TerminatedWorkerError)  workers kept dying under it
        ├── ClusterConnectionError (+ConnectionError)        lost touch with the cluster
        └── ClusterCancelledError                 the cluster cancelled it, not forklift

    RemoteTraceback (Exception)                   carried as ``__cause__`` of a task's
                                                  error: the traceback where it ran

    ForkliftWarning (UserWarning)
    ├── CacheWarning                              Memory worked around a cache problem
    └── PersistWarning                            e.g. mmap_mode ignored on a compressed file

This module imports nothing from forklift; every other room may import it.
"""

from __future__ import annotations

import pickle
from concurrent.futures.process import BrokenProcessPool
from pickle import PicklingError

__all__ = [
    "CacheEntryDamagedError",
    "CacheWarning",
    "CompressorUnavailableError",
    "ClusterCancelledError",
    "ClusterConnectionError",
    "ClusterError",
    "ClusterWorkerLostError",
    "ConfigurationError",
    "CorruptFileError",
    "ForkliftError",
    "ForkliftWarning",
    "HashingError",
    "InvalidTaskError",
    "MissingDependencyError",
    "ParallelStateError",
    "ParallelTimeoutError",
    "PersistError",
    "PersistWarning",
    "RemoteTraceback",
    "TaskPicklingError",
    "TaskTimeoutError",
    "TempSpaceError",
    "TerminatedWorkerError",
    "UnknownBackendError",
    "UnknownHashError",
    "UnknownCompressorError",
    "UnsafeLoadError",
    "UnsupportedFormatError",
    "WorkerStartError",
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


class CacheEntryDamagedError(ForkliftError):
    """A cache entry exists but cannot be read back (truncated, corrupted, unreadable)."""


class CacheWarning(ForkliftWarning):
    """Memory could not use its cache (damaged entry, unwritable folder, full disk) and
    computed or returned the result without it."""


class UnknownHashError(ConfigurationError):
    """A ``hash_name`` that :func:`~forklift.hash` does not know; the message lists the known."""


class HashingError(ForkliftError, PicklingError):
    """:func:`~forklift.hash` met an object it can neither encode nor reduce like pickle does.

    Derives from :class:`pickle.PicklingError`, which ``joblib.hash`` raises in that case.
    """


class PersistError(ForkliftError):
    """Root of the errors of :func:`~forklift.dump` and :func:`~forklift.load`."""


class CorruptFileError(PersistError, pickle.UnpicklingError):
    """A file is truncated, damaged or not a file forklift can read; the message names it.

    It derives from :class:`pickle.UnpicklingError`, which joblib users catch around ``load``.
    """


class UnsafeLoadError(PersistError, pickle.UnpicklingError):
    """A restricted load met a global (class or function) outside its allow-list.

    ``refused`` holds the ``module.qualname`` of every global the file would have imported
    that was not allowed. Nothing from the file was constructed.
    """

    def __init__(self, message: str, refused: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.refused = refused


class UnsupportedFormatError(PersistError, ValueError):
    """A file written by a newer forklift, or a legacy layout forklift does not read."""


class UnknownCompressorError(ConfigurationError):
    """A ``compress`` name that nobody registered; the message lists the known names."""


class CompressorUnavailableError(PersistError, ImportError):
    """A compressor whose optional package is missing; the message names the extra."""


class PersistWarning(ForkliftWarning):
    """A persistence request that was adjusted, e.g. ``mmap_mode`` on a compressed file."""


class TaskPicklingError(ForkliftError, PicklingError):
    """A task's function, arguments or result could not be sent between processes.

    The message names the function; the pool stays usable for other tasks.
    """


class WorkerStartError(ForkliftError, BrokenProcessPool):
    """Worker processes could not be started, e.g. because the pool's initializer raised."""


class TempSpaceError(ForkliftError, OSError):
    """A large array could not be written to the temp folder shared with workers.

    The message names the folder, the bytes needed and the bytes free, and what to change
    (``temp_folder=``, ``FORKLIFT_TEMP_FOLDER``, or ``max_nbytes=None``).
    """


class TaskTimeoutError(ForkliftError, TimeoutError):
    """One task ran longer than ``Parallel(task_timeout=...)`` allows; names the call."""


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
