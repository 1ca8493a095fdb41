"""The errors and warning of running tasks: in ``Parallel``, in the pool, in a worker.

Their data are keyword fields (``TerminatedWorkerError(message, pid=..., exit_status=...)``),
so that callers and tests read fields rather than parse the message; the message stays the
first positional argument, as in every exception, so ``error.args`` and pickling are as usual.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures.process import BrokenProcessPool
from pickle import PicklingError

from forklift.errors._base import ForkliftError, ForkliftWarning

__all__ = [
    "InvalidTaskError",
    "ParallelStateError",
    "ParallelTimeoutError",
    "RemoteTraceback",
    "TaskPicklingError",
    "TaskTimeoutError",
    "TasksCancelledWarning",
    "TempSpaceError",
    "TerminatedWorkerError",
    "WorkerStartError",
]


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
        >>> error = results[0].exception
        >>> print(error)
        task 0, threading.Event.wait(), ran longer than task_timeout=0.05s and was stopped
        >>> error.task, error.timeout            # the same, as fields
        (0, 0.05)
    """

    def __init__(
        self, message: str = "", *, task: int | None = None, timeout: float | None = None
    ) -> None:
        super().__init__(message)
        self.task = task  # the task's position in the call's iterable
        self.timeout = timeout  # the task_timeout it ran past, in seconds


class TerminatedWorkerError(ForkliftError, BrokenProcessPool):
    """A worker process died while running a task (signal, segfault, ``os._exit``).

    Fields (``None`` when not known, e.g. for a worker of the stdlib's pool): ``pid`` of the
    worker, its ``exit_status`` (the ``waitpid`` status: :func:`os.waitstatus_to_exitcode`
    gives the exit code, or minus the signal number) and the ``task_label`` of the task it
    was running.

    Examples:
        >>> import os
        >>> from forklift import Parallel, TerminatedWorkerError, delayed
        >>> from forklift import shutdown_reusable_executor
        >>> try:
        ...     Parallel(n_jobs=2)(delayed(os._exit)(3) for _ in range(2))
        ... except TerminatedWorkerError as error:
        ...     print("exited with code 3" in str(error), error.pid is not None)
        ...     print(os.waitstatus_to_exitcode(error.exit_status), error.task_label.split(" (")[0])
        True True
        3 posix._exit
        >>> shutdown_reusable_executor()         # stop the pool's workers now, not when idle
    """

    def __init__(
        self,
        message: str = "",
        *,
        pid: int | None = None,
        exit_status: int | None = None,
        task_label: str | None = None,
    ) -> None:
        super().__init__(message)
        self.pid = pid
        self.exit_status = exit_status
        self.task_label = task_label


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


class TempSpaceError(ForkliftError, OSError):
    """A large array could not be written to the temp folder shared with workers.

    The message names the folder, the bytes needed and the bytes free, and what to change
    (``temp_folder=``, ``FORKLIFT_TEMP_FOLDER``, or ``max_nbytes=None``). As an ``OSError``
    it takes ``(errno, message)``; the fields ``folder`` and ``nbytes`` (the array's size)
    say the same as data, ``None`` when not known.

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

    def __init__(self, *args: object, folder: str | None = None, nbytes: int | None = None) -> None:
        super().__init__(*args)
        self.folder = folder
        self.nbytes = nbytes


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
