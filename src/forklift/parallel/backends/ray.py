"""The ray backend: batches run as ray tasks, on a local ray instance or an existing cluster.

``Parallel(backend="ray")`` uses the ray this process is connected to; if there is none it
calls ``ray.init(address=address)`` - a new local instance when ``address`` is None, else the
cluster at that address (``"auto"``, ``"ray://host:10001"``, ...). forklift never shuts down
a ray it started: starting one costs seconds, so it lives until the process exits (ray
shuts itself down then) or until the user calls ``ray.shutdown()``.

One batch is one ray task running :func:`~forklift.parallel.backends.base.run_batch` in a ray
worker. Arguments at least ``scatter_threshold`` big (1 MiB by default) are put in ray's
object store once per backend lifetime and every task refers to them (``scatter=False`` turns
that off, ``scatter=[obj, ...]`` puts those objects whatever their size). NumPy arrays read
from the object store are read-only in the task, as with ``mmap_mode="r"``. ``remote_args``
(a dict) is passed to ``.options(...)`` of every task - ``num_cpus``, ``resources``, ...

Outcomes are relayed as tasks finish, abort cancels every unfinished task, and ray's own
failures become :class:`~forklift.errors.ClusterError` subclasses with the ray error chained.
A worker that dies under a task is retried by ray (``max_retries``, 3 by default).

Imports ``ray`` only when a backend is made (see the dask backend); never imports the engine.
"""

from __future__ import annotations

import functools
import logging
import threading
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

__all__ = ["RayBackend", "translate_ray_error"]

logger = logging.getLogger("forklift.parallel")
_remote_lock = threading.Lock()
_remote_function: Any = None


def _run_on_ray_worker(payload: bytes, keys: list[str], *values: Any) -> bytes:
    # The shared values arrive as top-level arguments: ray resolves object refs only there.
    return run_packed(payload, dict(zip(keys, values, strict=True)), "ray")


def _remote() -> Any:
    """The ray remote function, made once per process (after ray is initialised)."""
    global _remote_function
    import ray

    with _remote_lock:
        if _remote_function is None:
            _remote_function = ray.remote(_run_on_ray_worker)
        return _remote_function


class RayBackend(ClusterBackend):
    """Runs batches as ray tasks."""

    name = "ray"
    options = ("address", "scatter", "scatter_threshold", "remote_args")

    def __init__(
        self,
        address: str | None = None,
        scatter: bool | list[Any] = True,
        scatter_threshold: int | str | None = DEFAULT_SHARE_THRESHOLD,
        remote_args: dict[str, Any] | None = None,
        **unknown: Any,
    ) -> None:
        self._reject_unknown(unknown)
        self._check_address(address, "a string such as 'auto' or 'ray://host:10001'")
        if remote_args is not None and not isinstance(remote_args, dict):
            raise ConfigurationError(
                f"the ray backend's remote_args must be a dict of ray task options, got "
                f"{remote_args!r}"
            )
        import ray  # here, not at the top: ray is an optional extra

        self._ray = ray
        self._address = address
        self._remote_args = dict(remote_args or {})
        super().__init__(ray_failures, scatter, scatter_threshold)

    def _connect(self) -> None:
        if self._ray.is_initialized():
            return
        try:
            self._ray.init(address=self._address)
        except ConnectionError as error:
            raise ClusterConnectionError(
                f"could not connect to the ray cluster at {self._address!r}: {error}"
            ) from error

    def _capacity(self) -> int:
        # One task per CPU ray knows of.
        self._connect()
        return int(self._ray.cluster_resources().get("CPU", 1))

    def start(self, n_workers: int) -> None:
        self._connect()
        self._tasks.start_sharing(self._ray.put, self._threshold, self._forced)

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        # Not started: prepare() raises ParallelStateError.
        payload, handles, key = self._tasks.prepare(batch)
        keys = list(handles)
        options = {"name": key, **self._remote_args}
        with self._tasks.failures(key):
            try:
                remote = _remote().options(**options)
                ref = remote.remote(payload, keys, *(handles[k] for k in keys))
            except (ValueError, TypeError) as error:  # bad remote_args: the caller's mistake
                raise ConfigurationError(
                    f"ray refused the task options {options}: {error}"
                ) from error
        result, relay = self._tasks.track(ref, key, keys)
        ref.future().add_done_callback(relay)
        return result

    def abandon(self, future: Future[BatchOutcome]) -> None:
        """Stop one batch (it ran past ``task_timeout``): force=True kills the worker
        process running it; ray starts another."""
        ref = self._tasks.take(future)
        if ref is not None:
            try:
                self._ray.cancel(ref, force=True)
            except Exception:
                logger.warning("could not cancel a ray task", exc_info=True)

    def abort(self) -> None:
        for ref in self._tasks.take_all():
            try:
                # force=False: a queued task is dropped, a running one gets KeyboardInterrupt
                # and its worker lives on (force=True would kill the worker process).
                self._ray.cancel(ref, force=False)
            except Exception:
                logger.warning("could not cancel a ray task", exc_info=True)

    def stop(self, wait: bool = True) -> None:
        self.abort()

    def __repr__(self) -> str:
        return f"RayBackend(address={self._address!r})"


@functools.cache
def ray_failures() -> Sequence[Failure]:
    """ray's own failures, as forklift's errors (first match wins; see ``_remote``)."""
    import ray.exceptions

    lost_worker = (
        ray.exceptions.WorkerCrashedError,
        ray.exceptions.NodeDiedError,
        ray.exceptions.OutOfMemoryError,
        ray.exceptions.LocalRayletDiedError,
    )
    return (
        (
            lost_worker,
            ClusterWorkerLostError,
            "ray gave up on a batch{where}: its worker died and the retries ran out ({error})",
        ),
        (
            (ray.exceptions.TaskCancelledError,),
            ClusterCancelledError,
            "ray cancelled a batch{where} that forklift did not cancel ({error})",
        ),
        (
            (ray.exceptions.RpcError, ConnectionError),
            ClusterConnectionError,
            "lost the connection to the ray cluster{where}: {error}",
        ),
    )


def translate_ray_error(error: BaseException, key: str = "") -> BaseException:
    """forklift's error for a failure of ray itself (never a task's own error)."""
    return translate("ray", ray_failures(), error, key)
