"""The worker process's main loop: receive definitions and tasks, run them, send results back.

A worker is forked by the fork server (:mod:`._server`), connects back to the pool's socket,
says hello, and then serves messages in order::

    reader thread:  socket --receive--> inbox (queue)         (always draining, see below)
    main thread:    inbox --> INIT | DEFINE | FORGET | TASK | EXIT
                    TASK: unpickle (collector paused) -> call -> pickle result -> socket

The reader thread keeps reading while the main thread runs a task or sends a large result.
Without it, a parent sending a large message to a busy worker while that worker sends it a
large result would deadlock, each waiting for the other to read. When the parent goes away
(the socket closes), the reader ends the process at once, even in the middle of a task.

Imports only the standard library, cloudpickle and forklift's stdlib-only modules, so that
the fork server can preload it cheaply.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import struct
import sys
import threading
import traceback
from multiprocessing.connection import Client, Connection
from typing import Any, cast

import cloudpickle

from forklift._support.gc_pause import CollectionPause
from forklift._support.worker_state import run_initializer
from forklift.errors import TaskPicklingError
from forklift.pool import _protocol as protocol
from forklift.pool.error_transport import pack_error
from forklift.pool.options import THREAD_LIMIT_VARIABLES, WorkerOptions
from forklift.pool.sharing import WORKER_OBJECTS, load_shared_definition, pack_result

__all__ = ["run_worker"]

# Libraries whose thread pools threadpoolctl can resize after they were imported.
_NATIVE_POOL_MODULES = ("numpy", "scipy", "sklearn", "torch")


def run_worker(address: str, authkey: bytes, worker_id: int) -> int:
    """Serve the pool at ``address`` until told to exit; return the exit code."""
    connection = Client(address, family="AF_UNIX", authkey=authkey)
    protocol.send(connection, protocol.HELLO, worker_id, struct.pack("<Q", os.getpid()))
    inbox: queue.SimpleQueue[tuple[int, int, bytes | memoryview]] = queue.SimpleQueue()
    reader = threading.Thread(
        target=_read_forever, args=(connection, inbox), name="forklift-worker-reader", daemon=True
    )
    reader.start()
    return _serve(connection, inbox)


def _read_forever(
    connection: Connection, inbox: queue.SimpleQueue[tuple[int, int, bytes | memoryview]]
) -> None:
    while True:
        try:
            message = protocol.receive(connection)
        except (EOFError, OSError):
            # The parent is gone (or closed us): nobody wants our results any more.
            _flush_standard_streams()
            os._exit(0)
        if message[0] == protocol.DEFINE_SHARED:
            try:
                fd = protocol.receive_fd(connection)
            except (EOFError, OSError):
                _flush_standard_streams()
                os._exit(0)
            inbox.put((message[0], message[1], (message[2], fd)))  # type: ignore[arg-type]
            continue
        inbox.put(message)


def _serve(
    connection: Connection, inbox: queue.SimpleQueue[tuple[int, int, bytes | memoryview]]
) -> int:
    options = WorkerOptions()
    baseline_rss: int | None = None
    retiring = False
    while True:
        kind, number, payload = inbox.get()
        if kind == protocol.TASK:
            _run_task(connection, number, payload)
            if options.memory_growth_limit is not None and not retiring:
                rss = _resident_bytes()
                if baseline_rss is None:
                    baseline_rss = rss
                elif rss - baseline_rss > options.memory_growth_limit:
                    retiring = True
                    protocol.send(connection, protocol.RETIRE)
        elif kind == protocol.DEFINE:
            try:
                WORKER_OBJECTS[number] = pickle.loads(payload)
            except BaseException as error:
                WORKER_OBJECTS[number] = _Unloadable(error)
        elif kind == protocol.DEFINE_SHARED:
            layout, fd = cast("tuple[memoryview, int]", payload)
            try:
                WORKER_OBJECTS[number] = load_shared_definition(layout, fd)
            except BaseException as error:
                WORKER_OBJECTS[number] = _Unloadable(error)
        elif kind == protocol.FORGET:
            for token in pickle.loads(payload):
                WORKER_OBJECTS.pop(token, None)
        elif kind == protocol.AUTHKEY:
            # The caller's key, so that Manager proxies (a Queue for progress, a dict) unpickled
            # here can authenticate to the caller's managers: a worker forked from the fork
            # server does not inherit the caller's key as a forked child of the caller would.
            multiprocessing.current_process().authkey = bytes(payload)
        elif kind == protocol.INIT:
            options = pickle.loads(payload)
            try:
                _apply_options(options)
            except BaseException:
                text = traceback.format_exc()
                protocol.send(connection, protocol.INIT_FAILED, 0, text.encode())
                _flush_standard_streams()
                return 1
        elif kind == protocol.EXIT:
            _flush_standard_streams()
            return 0


class _Unloadable:
    """Stands for a shared object whose definition failed to unpickle in this worker."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise TaskPicklingError(
            f"the function could not be unpickled in the worker: {self.error!r}"
        ) from self.error


def _apply_options(options: WorkerOptions) -> None:
    limit = options.thread_limit
    if limit is not None:
        for name in THREAD_LIMIT_VARIABLES:
            os.environ.setdefault(name, str(limit))
        # A nested Parallel(n_jobs=-1) in a task then stays within this worker's CPU share.
        os.environ["FORKLIFT_MAX_CPU_COUNT"] = str(limit)
    os.environ.update(options.env)
    if limit is not None and any(name in sys.modules for name in _NATIVE_POOL_MODULES):
        # Already loaded by the fork server: their pools were sized before our variables.
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=limit)
    if options.initializer is not None:
        # What it returns is this worker's forklift.worker_state().
        run_initializer(options.initializer, options.initargs, per_thread=False)


def _run_task(connection: Connection, task_id: int, payload: bytes | memoryview) -> None:
    function: Any = None
    try:
        # The collector is paused while a task is unpickled: a batch of tiny calls is
        # thousands of young tuples that would otherwise be collected and promoted for
        # nothing (see forklift._support.gc_pause); it runs as usual during the call.
        with CollectionPause():
            function, args, kwargs = pickle.loads(payload)
        result = function(*args, **kwargs)
    except BaseException as error:
        protocol.send(connection, protocol.RESULT_ERROR, task_id, _dump_error(error))
        return
    try:
        packed = pack_result(result)
    except BaseException as error:
        # A result may offer a picklable stand-in that says which part failed (the batch
        # outcomes of forklift's process backend do: they name the task).
        replace = getattr(result, "replacement_when_unpicklable", None)
        if replace is not None:
            try:
                data = cloudpickle.dumps(replace(error), protocol=5)
            except BaseException:
                pass
            else:
                protocol.send(connection, protocol.RESULT_OK, task_id, data)
                return
        problem = TaskPicklingError(
            f"the result of {_describe(function)} (a {type(result).__name__}) could not be "
            f"pickled to send it back from the worker: {error}"
        )
        problem.__cause__ = error
        protocol.send(connection, protocol.RESULT_ERROR, task_id, _dump_error(problem))
        return
    del result
    if packed.shared:
        try:
            protocol.send(connection, protocol.RESULT_SHARED, task_id, packed.layout)
            protocol.send_fd(connection, packed.fd)
        finally:
            packed.close()
    else:
        protocol.send(connection, protocol.RESULT_OK, task_id, packed.inline)


def _dump_error(error: BaseException) -> bytes:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    # The parcel always pickles: what of the error does not pickle travels as text.
    data: bytes = cloudpickle.dumps((pack_error(error), text), protocol=5)
    return data


def _describe(function: object) -> str:
    name = getattr(function, "__qualname__", None) or type(function).__name__
    return f"{name}()"


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
