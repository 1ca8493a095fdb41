"""forklift's exceptions and warnings: one tree, rooted at :class:`ForkliftError`.

Each error also derives from the built-in exception a joblib user would catch for the
same situation, so ``except ValueError`` keeps working after switching imports::

    ForkliftError (Exception)
    ├── ConfigurationError (ValueError)          bad n_jobs, return_as, prefer, ...
    │   ├── UnknownBackendError                   names the backends that do exist
    │   ├── UnknownHashError                      names the hash_name values that do exist
    │   ├── UnknownCompressorError                ``compress`` names no registered codec
    │   ├── UnknownStoreError (+TypeError)        ``Memory(backend=...)`` names no store
    │   └── MissingDependencyError (+ImportError) an optional extra is not installed;
    │                                             says which ``pip install forklift[...]``
    ├── InvalidTaskError (TypeError)              an item that is not a delayed call
    ├── ParallelStateError (RuntimeError)         calling a closed or running Parallel
    ├── ParallelTimeoutError (TimeoutError,       the whole call ran past ``timeout``; also
    │        multiprocessing.TimeoutError)        what joblib raises, so its users' except works
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
    ├── CacheStoreUnavailableError (ConnectionError) object storage unreachable or read-only,
    │                                             and the store was asked to be strict
    ├── CallArgumentsError (TypeError, ValueError) a cached call that does not fit the signature
    └── ClusterError (RuntimeError)               dask or ray could not run a batch
        ├── ClusterWorkerLostError (+TerminatedWorkerError)  workers kept dying under it
        ├── ClusterConnectionError (+ConnectionError)        lost touch with the cluster
        └── ClusterCancelledError                 the cluster cancelled it, not forklift

    RemoteTraceback (Exception)                   carried as ``__cause__`` of a task's
                                                  error: the traceback where it ran

    ForkliftWarning (UserWarning)
    ├── CacheWarning                              Memory worked around a cache problem
    ├── PersistWarning                            e.g. mmap_mode ignored on a compressed file
    └── TasksCancelledWarning                     an abandoned call's sent tasks were cancelled

Fields, not message text: an error that carries data takes it as keyword fields after the
message, each ``None`` when not known, so that callers and tests read fields rather than
parse messages: ``TerminatedWorkerError(message, pid=..., exit_status=..., task_label=...)``,
``TaskTimeoutError(message, task=..., timeout=...)``, ``TempSpaceError(errno, message,
folder=..., nbytes=...)``, ``UnsafeLoadError(message, refused=...)`` and ``ClusterError(message,
engine=..., task_key=...)``. The message stays the one positional argument, so ``args`` and
pickling work as for any exception.

The classes live in four modules by what fails - :mod:`._base` (the roots and bad values),
:mod:`._running` (tasks, workers, the pool), :mod:`._storage` (hash, dump/load, cache),
:mod:`._cluster` (dask, ray) - and are all imported from here: ``from forklift.errors import
X`` is the one public path, and each class's ``__module__`` says ``forklift.errors``, so
tracebacks, pickles and the docs name it there.

This package imports nothing from forklift outside itself; every other room may import it.
"""

from __future__ import annotations

from forklift.errors import _base, _cluster, _running, _storage
from forklift.errors._base import *  # noqa: F403 - each part's __all__ is its list of names
from forklift.errors._cluster import *  # noqa: F403
from forklift.errors._running import *  # noqa: F403
from forklift.errors._storage import *  # noqa: F403

__all__ = []
__all__ += _base.__all__
__all__ += _running.__all__
__all__ += _storage.__all__
__all__ += _cluster.__all__

# One public home: tracebacks, pickles and the API docs say forklift.errors.X.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
