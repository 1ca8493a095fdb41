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

This module imports nothing from forklift; every other room may import it.
"""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures.process import BrokenProcessPool
from pickle import PicklingError

__all__ = [
    "CacheEntryDamagedError",
    "CacheWarning",
    "CallArgumentsError",
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
    "TasksCancelledWarning",
    "TempSpaceError",
    "TerminatedWorkerError",
    "UnknownBackendError",
    "UnknownHashError",
    "UnknownStoreError",
    "UnknownCompressorError",
    "UnsafeLoadError",
    "UnsupportedFormatError",
    "WorkerStartError",
]


class ForkliftError(Exception):
    """Root of every error forklift raises on its own account.

    Examples:
        >>> from forklift import ForkliftError, hash
        >>> try:
        ...     hash(1, hash_name="nope")
        ... except ForkliftError as error:       # also a ValueError, as joblib would raise
        ...     print(type(error).__name__, isinstance(error, ValueError))
        UnknownHashError True
    """


class ConfigurationError(ForkliftError, ValueError):
    """A parameter has a value forklift cannot use; the message says which and why.

    Examples:
        >>> from forklift import Parallel
        >>> try:
        ...     Parallel(n_jobs=0)
        ... except ValueError as error:          # a ConfigurationError is a ValueError
        ...     print(error)
        n_jobs == 0 in Parallel has no meaning: use a positive number of workers, -1 for all ...
    """


class UnknownBackendError(ConfigurationError):
    """A backend name that nobody registered; the message lists the known names.

    Examples:
        >>> from forklift import Parallel
        >>> from forklift.errors import UnknownBackendError
        >>> try:
        ...     Parallel(backend="threads")
        ... except UnknownBackendError as error:
        ...     print(error)
        Invalid backend: threads, expected one of [...'threading']: no backend is registered ...
    """


class InvalidTaskError(ForkliftError, TypeError):
    """An item of the task iterable is neither ``delayed(f)(...)`` nor ``(f, args, kwargs)``.

    Examples:
        >>> from forklift import Parallel
        >>> try:
        ...     Parallel(n_jobs=1)([abs(-1)])        # called at once: forgot delayed()
        ... except TypeError as error:             # an InvalidTaskError is a TypeError
        ...     print(type(error).__name__)
        InvalidTaskError
    """


class ParallelStateError(ForkliftError, RuntimeError):
    """A :class:`~forklift.Parallel` was used while closed or while already running.

    Examples:
        >>> from forklift import Parallel, delayed
        >>> from forklift.errors import ParallelStateError
        >>> with Parallel(n_jobs=2, backend="threading") as parallel:
        ...     parallel(delayed(abs)(-i) for i in range(3))
        [0, 1, 2]
        >>> try:
        ...     parallel(delayed(abs)(-i) for i in range(3))   # after the block: closed
        ... except ParallelStateError as error:
        ...     print(error)
        this Parallel was closed when its with-block ended; call it inside the block or make ...
    """


class ParallelTimeoutError(ForkliftError, TimeoutError, multiprocessing.TimeoutError):
    """A :class:`~forklift.Parallel` call did not finish within its ``timeout``.

    It is both the builtin ``TimeoutError`` and ``multiprocessing.TimeoutError``, the class
    joblib raises here, so code written for either keeps catching it.

    Examples:
        >>> import threading
        >>> from forklift import Parallel, delayed
        >>> release = threading.Event()
        >>> try:
        ...     Parallel(n_jobs=2, backend="threading", timeout=0.05)(
        ...         delayed(release.wait)(10) for _ in range(2)
        ...     )
        ... except TimeoutError as error:        # a ParallelTimeoutError is a TimeoutError
        ...     print(type(error).__name__)
        ParallelTimeoutError
        >>> release.set()                        # let the abandoned tasks end
        >>> import multiprocessing               # joblib raises multiprocessing's: caught too
        >>> issubclass(ParallelTimeoutError, multiprocessing.TimeoutError)
        True
    """


class TerminatedWorkerError(ForkliftError, BrokenProcessPool):
    """A worker process died while running a task (signal, segfault, ``os._exit``).

    Examples:
        >>> import os
        >>> from forklift import Parallel, TerminatedWorkerError, delayed
        >>> from forklift import shutdown_reusable_executor
        >>> try:
        ...     Parallel(n_jobs=2)(delayed(os._exit)(3) for _ in range(2))
        ... except TerminatedWorkerError as error:
        ...     print("exited with code 3" in str(error))
        True
        >>> shutdown_reusable_executor()         # stop the pool's workers now, not when idle
    """


class RemoteTraceback(Exception):
    """The formatted traceback of a task's error, as it was where the task ran.

    forklift re-raises a task's exception with its own type in the caller and chains this
    object as its ``__cause__``, so the printed traceback shows both sides.

    Examples:
        >>> from forklift import Parallel, delayed, shutdown_reusable_executor
        >>> try:
        ...     Parallel(n_jobs=2)(delayed(int)(text) for text in ["1", "x"])
        ... except ValueError as error:      # the task's own exception type
        ...     print(type(error.__cause__).__name__)
        ...     print(error.__cause__.traceback_text.splitlines()[-1])
        RemoteTraceback
        ValueError: invalid literal for int() with base 10: 'x'
        >>> shutdown_reusable_executor()
    """

    def __init__(self, traceback_text: str) -> None:
        super().__init__(traceback_text)
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return "\n" + self.traceback_text.rstrip("\n")


class ForkliftWarning(UserWarning):
    """Root of forklift's warnings.

    Examples:
        >>> import io, warnings
        >>> from forklift import dump, load
        >>> from forklift.errors import ForkliftWarning
        >>> buffer = io.BytesIO()
        >>> _ = dump([1, 2], buffer)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("error", ForkliftWarning)   # e.g. in a test suite
        ...     try:
        ...         load(io.BytesIO(buffer.getvalue()), mmap_mode="r")
        ...     except ForkliftWarning as warning:
        ...         print(type(warning).__name__)
        PersistWarning
    """


class CacheEntryDamagedError(ForkliftError):
    """A cache entry exists but cannot be read back (truncated, corrupted, unreadable).

    Examples:
        Memory itself recovers from a damaged entry (see :class:`CacheWarning`); a shelved
        result raises it:

        >>> import pathlib, tempfile
        >>> from forklift import Memory
        >>> from forklift.errors import CacheEntryDamagedError
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     shelved = Memory(folder, verbose=0).cache(abs).call_and_shelve(-5)
        ...     for output in pathlib.Path(folder).rglob("output.fkl"):
        ...         _ = output.write_bytes(b"damaged")
        ...     try:
        ...         shelved.get()
        ...     except CacheEntryDamagedError as error:
        ...         print("cannot read cache entry" in str(error))
        True
    """


class CacheWarning(ForkliftWarning):
    """Memory could not use its cache (damaged entry, unwritable folder, full disk) and
    computed or returned the result without it.

    Examples:
        >>> import pathlib, tempfile, warnings
        >>> from forklift import Memory
        >>> from forklift.errors import CacheWarning
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     square = Memory(folder, verbose=0).cache(lambda x: x * x)
        ...     first = square(7)
        ...     for output in pathlib.Path(folder).rglob("output.fkl"):
        ...         _ = output.write_bytes(b"damaged")
        ...     with warnings.catch_warnings(record=True) as caught:
        ...         warnings.simplefilter("always")
        ...         again = square(7)                # deleted, recomputed, stored again
        ...     first, again, caught[0].category is CacheWarning
        (49, 49, True)
    """


class UnknownStoreError(ConfigurationError, TypeError):
    """``Memory(backend=...)`` names a store nobody registered.

    Also a ``TypeError``, which joblib raises there ("Unknown location ... or backend ...").

    Examples:
        >>> import tempfile
        >>> from forklift import Memory
        >>> from forklift.errors import UnknownStoreError
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     try:
        ...         Memory(folder, backend="s3")
        ...     except UnknownStoreError as error:
        ...         print(str(error).split(";")[0].replace(folder, "DIR"))
        Unknown location DIR or backend 's3'
    """


class CallArgumentsError(ForkliftError, TypeError, ValueError):
    """A cached function was called with arguments its signature does not take.

    A ``TypeError``, as calling the function itself raises, and a ``ValueError``, as
    joblib's Memory raises ("Too many arguments for f(a, *, b=1) ...").

    Examples:
        >>> import tempfile
        >>> from forklift import Memory
        >>> from forklift.errors import CallArgumentsError
        >>> def scale(x, *, factor=2):
        ...     return x * factor
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     try:
        ...         Memory(folder, verbose=0).cache(scale)(1, 3)
        ...     except ValueError as error:
        ...         print(type(error).__name__, str(error).splitlines()[0])
        CallArgumentsError Too many arguments for scale(x, *, factor=2): scale(1, 3) was called.
    """


class UnknownHashError(ConfigurationError):
    """A ``hash_name`` that :func:`~forklift.hash` does not know; the message lists the known.

    Examples:
        >>> from forklift import hash
        >>> try:
        ...     hash([1, 2], hash_name="crc32")
        ... except ValueError as error:
        ...     print(error)
        Valid options for 'hash_name' are ('xxh3_128', 'blake3', ...). Got hash_name='crc32' ...
    """


class HashingError(ForkliftError, PicklingError):
    """:func:`~forklift.hash` met an object it can neither encode nor reduce like pickle does.

    Derives from :class:`pickle.PicklingError`, which ``joblib.hash`` raises in that case.

    Examples:
        >>> import pickle, threading
        >>> from forklift import hash
        >>> try:
        ...     hash({"lock": threading.Lock()})
        ... except pickle.PicklingError as error:
        ...     print(type(error).__name__)
        HashingError
    """


class PersistError(ForkliftError):
    """Root of the errors of :func:`~forklift.dump` and :func:`~forklift.load`.

    Examples:
        >>> import io
        >>> from forklift import load
        >>> from forklift.errors import PersistError
        >>> try:
        ...     load(io.BytesIO(b"not a pickle at all"))
        ... except PersistError as error:
        ...     print(type(error).__name__, error)
        CorruptFileError <BytesIO>: neither a forklift file nor a joblib file
    """


class CorruptFileError(PersistError, pickle.UnpicklingError):
    """A file is truncated, damaged or not a file forklift can read; the message names it.

    It derives from :class:`pickle.UnpicklingError`, which joblib users catch around ``load``.

    Examples:
        >>> import os, tempfile
        >>> from forklift import dump, load
        >>> from forklift.errors import CorruptFileError
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "cut.fkl")
        ...     _ = dump(list(range(100)), path)
        ...     os.truncate(path, os.path.getsize(path) - 10)   # as a full disk or a copy cut short
        ...     try:
        ...         load(path)
        ...     except CorruptFileError as error:
        ...         print(str(error).replace(folder, "<folder>"))
        <folder>/cut.fkl: truncated or damaged: no valid index at the end of the file
    """


class UnsafeLoadError(PersistError, pickle.UnpicklingError):
    """A restricted load met a global (class or function) outside its allow-list.

    ``refused`` holds the ``module.qualname`` of every global the file would have imported
    that was not allowed. Nothing from the file was constructed.

    Examples:
        >>> import io, uuid
        >>> from forklift import SAFE_GLOBALS, dump, load
        >>> from forklift.errors import UnsafeLoadError
        >>> buffer = io.BytesIO()
        >>> _ = dump({"id": uuid.UUID(int=1)}, buffer)
        >>> try:
        ...     load(io.BytesIO(buffer.getvalue()), allowed_globals=SAFE_GLOBALS)
        ... except UnsafeLoadError as error:
        ...     error.refused
        ('uuid.UUID',)
        >>> load(io.BytesIO(buffer.getvalue()), allowed_globals=SAFE_GLOBALS | {"uuid.UUID"})
        {'id': UUID('00000000-0000-0000-0000-000000000001')}
    """

    def __init__(self, message: str, refused: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.refused = refused


class UnsupportedFormatError(PersistError, ValueError):
    """A file written by a newer forklift, or a legacy layout forklift does not read.

    Examples:
        >>> import io
        >>> from forklift import dump, load
        >>> from forklift.errors import UnsupportedFormatError
        >>> buffer = io.BytesIO()
        >>> _ = dump("data", buffer)
        >>> future = bytearray(buffer.getvalue())
        >>> future[8:12] = bytes([2, 0, 0, 0])   # major version 2, minor 0: a future forklift
        >>> try:
        ...     load(io.BytesIO(bytes(future)))
        ... except UnsupportedFormatError as error:
        ...     print(error)
        <BytesIO>: written in forklift format 2.0; this forklift reads format 1.x - upgrade forklift
    """


class UnknownCompressorError(ConfigurationError):
    """A ``compress`` name that nobody registered; the message lists the known names.

    Examples:
        >>> import io
        >>> from forklift import dump
        >>> try:
        ...     dump([1, 2], io.BytesIO(), compress="rar")
        ... except ValueError as error:          # a ConfigurationError, so a ValueError
        ...     print(type(error).__name__, error)
        UnknownCompressorError Non valid compression method given: "rar". Possible values are ...
    """


class CompressorUnavailableError(PersistError, ImportError):
    """A compressor whose optional package is missing; the message names the extra.

    Examples:
        Code that probes for an optional codec with ``except ImportError`` keeps working:

        >>> from forklift.errors import CompressorUnavailableError
        >>> issubclass(CompressorUnavailableError, ImportError)
        True
    """


class PersistWarning(ForkliftWarning):
    """A persistence request that was adjusted, e.g. ``mmap_mode`` on a compressed file.

    Examples:
        >>> import os, tempfile, warnings
        >>> from forklift import dump, load
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "small.fkl.gz")
        ...     _ = dump([1, 2, 3], path)
        ...     with warnings.catch_warnings(record=True) as caught:
        ...         warnings.simplefilter("always")
        ...         value = load(path, mmap_mode="r")      # compressed: read, not mapped
        ...     value, caught[0].category.__name__
        ([1, 2, 3], 'PersistWarning')
    """


class TasksCancelledWarning(ForkliftWarning):
    """A call's results were abandoned (its generator closed or deleted, its ``with`` block
    ended) while tasks it had sent were queued or running: those were cancelled.

    The message says how many, as joblib's warning does; nothing is said when nothing was
    cancelled. Pulling fewer tasks ahead (``pre_dispatch``) wastes less work.

    Examples:
        >>> import threading, warnings
        >>> from forklift import Parallel, delayed
        >>> from forklift.errors import TasksCancelledWarning
        >>> release = threading.Event()
        >>> results = Parallel(
        ...     n_jobs=2, backend="threading", return_as="generator", batch_size=1, pre_dispatch=2
        ... )(delayed(release.wait)(10) for _ in range(5))
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     results.close()                  # two tasks were sent; they are given up on
        >>> release.set()                        # (threads cannot be killed: let them end)
        >>> caught[0].category is TasksCancelledWarning
        True
        >>> print(caught[0].message)
        2 tasks sent to workers were cancelled: the call's results were abandoned ...
    """


class TaskPicklingError(ForkliftError, PicklingError):
    """A task's function, arguments or result could not be sent between processes.

    The message names the function; the pool stays usable for other tasks.

    Examples:
        >>> import threading
        >>> from forklift import Parallel, delayed, shutdown_reusable_executor
        >>> from forklift.errors import TaskPicklingError
        >>> try:
        ...     Parallel(n_jobs=2)(delayed(threading.Lock)() for _ in range(2))   # a lock result
        ... except TaskPicklingError as error:
        ...     print(error)
        the result of _thread.allocate_lock() (a lock) could not be pickled to send it back ...
        >>> shutdown_reusable_executor()         # stop the pool's workers now, not when idle
    """


class WorkerStartError(ForkliftError, BrokenProcessPool):
    """Worker processes could not be started, e.g. because the pool's initializer raised.

    Examples:
        >>> from forklift import Parallel, delayed, shutdown_reusable_executor
        >>> from forklift.errors import WorkerStartError
        >>> try:
        ...     Parallel(n_jobs=2, initializer=int, initargs=("not a number",))(
        ...         delayed(abs)(-i) for i in range(2)
        ...     )
        ... except WorkerStartError as error:
        ...     print(error)
        the pool's initializer raised in a worker, so the pool cannot run tasks
        >>> shutdown_reusable_executor()
    """


class TempSpaceError(ForkliftError, OSError):
    """A large array could not be written to the temp folder shared with workers.

    The message names the folder, the bytes needed and the bytes free, and what to change
    (``temp_folder=``, ``FORKLIFT_TEMP_FOLDER``, or ``max_nbytes=None``).

    Examples:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from forklift import Parallel, TempSpaceError, delayed, shutdown_reusable_executor
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     a_file = os.path.join(folder, "notes.txt")
        ...     open(a_file, "w").close()
        ...     try:                             # arrays over max_nbytes go to temp_folder
        ...         Parallel(n_jobs=2, temp_folder=a_file, max_nbytes="1K")(
        ...             delayed(np.sum)(np.ones(1000)) for _ in range(2)
        ...         )
        ...     except OSError as error:         # a TempSpaceError is an OSError
        ...         print(type(error).__name__, "cannot create a folder" in str(error))
        TempSpaceError True
        >>> shutdown_reusable_executor()
    """


class TaskTimeoutError(ForkliftError, TimeoutError):
    """One task ran longer than ``Parallel(task_timeout=...)`` allows; names the call.

    Examples:
        >>> import threading
        >>> from forklift import Parallel, delayed
        >>> release = threading.Event()
        >>> results = Parallel(n_jobs=2, backend="threading", task_timeout=0.05, on_error="return")(
        ...     delayed(release.wait)(10) for _ in range(1)
        ... )
        >>> release.set()                        # a thread cannot be killed: let it end
        >>> print(results[0].exception)
        task 0, threading.Event.wait(), ran longer than task_timeout=0.05s and was stopped
    """


class MissingDependencyError(ConfigurationError, ImportError):
    """A feature needs an optional extra that is not installed; the message names the extra.

    It is an ``ImportError`` too, so code that probes for an optional backend with
    ``except ImportError`` keeps working.

    Examples:
        >>> from forklift.errors import ConfigurationError, MissingDependencyError
        >>> issubclass(MissingDependencyError, ImportError), issubclass(
        ...     MissingDependencyError, ConfigurationError
        ... )
        (True, True)
    """


class ClusterError(ForkliftError, RuntimeError):
    """A cluster engine (dask.distributed, ray) failed to run a batch, for its own reasons.

    The engine's original exception is chained as ``__cause__``. A task's own error is never
    wrapped in this: it re-raises with its own type.

    Examples:
        One ``except`` clause covers every way a cluster can fail a call:

        >>> from forklift.errors import (
        ...     ClusterCancelledError, ClusterConnectionError, ClusterError, ClusterWorkerLostError
        ... )
        >>> all(
        ...     issubclass(kind, ClusterError)
        ...     for kind in (ClusterWorkerLostError, ClusterConnectionError, ClusterCancelledError)
        ... )
        True
    """


class ClusterWorkerLostError(ClusterError, TerminatedWorkerError):
    """Cluster workers kept dying while running a batch, and the engine gave up retrying it.

    Examples:
        It is a :class:`TerminatedWorkerError` too, so code written for local processes catches it:

        >>> from forklift.errors import ClusterWorkerLostError, TerminatedWorkerError
        >>> issubclass(ClusterWorkerLostError, TerminatedWorkerError)
        True
    """


class ClusterConnectionError(ClusterError, ConnectionError):
    """The connection to the cluster's scheduler or workers was lost during the call.

    Examples:
        >>> from forklift.errors import ClusterConnectionError
        >>> issubclass(ClusterConnectionError, ConnectionError)
        True
    """


class ClusterCancelledError(ClusterError):
    """The cluster cancelled a batch that forklift did not cancel (e.g. a client restart).

    Examples:
        >>> from forklift.errors import ClusterCancelledError, ClusterError
        >>> issubclass(ClusterCancelledError, ClusterError)
        True
    """
