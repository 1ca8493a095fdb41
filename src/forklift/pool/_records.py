"""The pool's bookkeeping records and small helpers shared by its manager and callers.

:class:`Task` is one submitted call on its way through the pool; :class:`Worker` is what the
pool knows about one worker process (its socket, the tasks it holds in order, its
:class:`WorkerState`). :func:`settle` resolves futures from what workers sent back.

A worker's state is one value, not four flags: the states are ordered, a worker only moves
forward through them (:meth:`Worker.advance`), except that a drained worker becomes active
again (:meth:`Worker.end_drain`). Flags allowed combinations that meant nothing (killed but
still taking tasks) and made every reader decide which flag won.

The two records are slotted dataclasses without equality or repr: a task or worker is
one object, compared and hashed by identity as before. Rejected: hand-written ``__init__``
methods, which repeated every field name three times (slots, parameters, assignments).

Imports the standard library, :mod:`forklift.errors`, :mod:`forklift._support` and the
pool's transport modules (:mod:`.error_transport`, :mod:`.sharing`); never the manager, the
books or the executor, which import it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import enum
import os
import pickle
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from multiprocessing.connection import Connection
from typing import Any

from forklift._support.naming import callable_name
from forklift.errors import RemoteTraceback, TaskPicklingError
from forklift.pool.error_transport import attach_remote_traceback
from forklift.pool.sharing import SharingScope, load_shared_definition

__all__ = [
    "SharedPayload",
    "Settled",
    "Task",
    "Worker",
    "WorkerState",
    "describe",
    "fail",
    "kill_group",
    "run_chunk",
    "settle",
]


class SharedPayload:
    """A result that came as a memfd (see :func:`.sharing.pack_result`): mapped when settled.

    If it is never settled (the future was dropped), the descriptor closes with this object.
    """

    __slots__ = ("fd", "layout")

    def __init__(self, layout: bytes, fd: int) -> None:
        self.layout = layout
        self.fd = fd

    def __del__(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)


@dataclasses.dataclass(slots=True, eq=False, repr=False)
class Task:
    """One submitted call: its future, pickled payload, the shared-object tokens it needs."""

    task_id: int
    future: Future[Any]
    payload: bytes
    tokens: set[int]
    scope: SharingScope | None
    label: str
    started: bool = False


class WorkerState(enum.IntEnum):
    """Where a worker stands; ordered: a worker moves only forward (but see ``DRAINING``)."""

    ACTIVE = 0  # takes tasks
    DRAINING = 1  # finishing abandoned tasks (see _abandon.py): no new task until then
    RETIRING = 2  # takes no new task; asked to exit once it holds none
    EXIT_SENT = 3  # asked to exit: its socket closing is no crash
    KILLED = 4  # killed on purpose: its death is not a crash to report


@dataclasses.dataclass(slots=True, eq=False, repr=False)
class Worker:
    """What the pool knows about one worker process."""

    worker_id: int
    pid: int
    connection: Connection
    in_flight: collections.deque[Task] = dataclasses.field(default_factory=collections.deque)
    known_tokens: set[int] = dataclasses.field(default_factory=set)
    n_sent: int = 0
    state: WorkerState = WorkerState.ACTIVE
    idle_since: float = dataclasses.field(default_factory=time.monotonic)
    dead_since: float | None = None

    @property
    def accepts_tasks(self) -> bool:
        return self.state is WorkerState.ACTIVE and self.dead_since is None

    def advance(self, state: WorkerState) -> None:
        """Move on to ``state`` unless it is further along already."""
        self.state = max(self.state, state)

    def end_drain(self) -> None:
        if self.state is WorkerState.DRAINING:
            self.state = WorkerState.ACTIVE


# What the manager hands to settle(): (task, ok, pickled result or error, or an exception).
Settled = list[tuple[Task, bool, Any]]


def settle(settled: Settled) -> None:
    """Resolve futures (outside the lock: their callbacks may submit more work)."""
    for task, ok, payload in settled:
        if isinstance(payload, BaseException):
            fail(task.future, payload)
            continue
        try:
            if isinstance(payload, SharedPayload):
                fd, payload.fd = payload.fd, -1
                value = load_shared_definition(payload.layout, fd)
            else:
                value = pickle.loads(payload)
        except BaseException as error:
            problem = TaskPicklingError(
                f"the {'result' if ok else 'error'} of {task.label} could not be unpickled "
                f"in the caller: {error}"
            )
            problem.__cause__ = error
            fail(task.future, problem)
            continue
        if ok:
            with contextlib.suppress(InvalidStateError):
                task.future.set_result(value)
        else:
            remote_error, text = value
            attach_remote_traceback(remote_error, RemoteTraceback(text))
            fail(task.future, remote_error)


def fail(future: Future[Any], error: BaseException) -> None:
    with contextlib.suppress(InvalidStateError):
        if not future.done():
            future.set_exception(error)


def kill_group(pid: int) -> None:
    """Kill a worker and every process it started (each worker leads its process group)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - the group changed hands; kill the worker
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def run_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]:
    return [fn(*arguments) for arguments in chunk]


def describe(fn: object) -> str:
    return f"{callable_name(fn)}()"
