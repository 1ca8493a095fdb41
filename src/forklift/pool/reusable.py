"""The process-wide shared pool: one set of warm workers reused by every call.

:func:`get_reusable_executor` returns the same :class:`~forklift.pool.executor.ProcessPool`
call after call, resized to the number of workers asked for (busy workers are never killed to
shrink it: they leave once their work is done). When the options that shape a worker change
(initializer, environment, ...: a :class:`~.options.WorkerOptions` that is not ``==`` the
pool's; the thread limit alone is changed in place), the old pool is shut down - its workers
killed if ``kill_workers`` - and a new one takes its place.

Backends take the pool with :func:`acquire_executor` and give it back with
:func:`release_executor`. While a call holds it, nobody else's request shuts it down or
shrinks it below what that call asked for: a request with other options gets a new shared
pool, and the old one is shut down when its last call gives it back. So two threads running
``Parallel`` at once never break each other's pool.

A call gives its pool back when it ends, which may be in a finalizer that the garbage
collector runs on a thread that is inside this module already: such a give-back is deferred
to the end of that thread's section instead of waiting for a lock it holds itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from forklift._support.cpus import cpu_count, threads_per_worker, workers_for_n_jobs
from forklift.pool.executor import ProcessPool
from forklift.pool.options import WorkerOptions

__all__ = [
    "acquire_executor",
    "get_reusable_executor",
    "release_executor",
    "shutdown_reusable_executor",
    "warm_up",
]


class _Guard:
    """This module's lock, knowing which thread holds it (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self.deferred: list[tuple[ProcessPool, int]] = []

    def held_here(self) -> bool:
        return self._owner == threading.get_ident()

    def __enter__(self) -> _Guard:
        self._lock.acquire()
        self._owner = threading.get_ident()
        return self

    def __exit__(self, *exc_info: object) -> None:
        deferred, self.deferred = self.deferred, []
        self._owner = None
        self._lock.release()
        for pool, max_workers in deferred:
            release_executor(pool, max_workers)


_lock = _Guard()
_executor: ProcessPool | None = None
# Pools lent to running calls: pool -> the worker counts those calls asked for.
_leases: dict[ProcessPool, list[int]] = {}


def get_reusable_executor(
    max_workers: int | None = None,
    *,
    reuse: bool | Literal["auto"] = "auto",
    kill_workers: bool = False,
    idle_worker_timeout: float | None = 300,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
    env: Mapping[str, str] | None = None,
    max_tasks_per_child: int | None = None,
    thread_limit: int | None = None,
    memory_growth_limit: int | None = None,
) -> ProcessPool:
    """The shared process pool, with ``max_workers`` workers (default: all CPUs).

    ``reuse="auto"`` keeps the current pool when its worker options are the same; ``True``
    keeps it whatever they are; ``False`` always starts a new pool. ``kill_workers=True``
    kills the replaced pool's workers (and their child processes) instead of letting their
    running tasks finish. Workers idle for ``idle_worker_timeout`` seconds exit.

    Examples:
        >>> from forklift import get_reusable_executor, shutdown_reusable_executor
        >>> pool = get_reusable_executor(max_workers=2)
        >>> pool.submit(pow, 2, 10).result()
        1024
        >>> list(pool.map(abs, [-1, -2, -3]))
        [1, 2, 3]
        >>> get_reusable_executor(max_workers=2) is pool  # the same shared pool
        True
        >>> shutdown_reusable_executor()
    """
    options = WorkerOptions.from_arguments(locals())
    with _lock:
        return _get_locked(
            max_workers,
            options,
            reuse=reuse,
            kill_workers=kill_workers,
            idle_worker_timeout=idle_worker_timeout,
        )


def acquire_executor(
    max_workers: int,
    options: WorkerOptions | None = None,
    *,
    preload: Sequence[str] = (),
    idle_worker_timeout: float | None = 300,
) -> ProcessPool:
    """The shared pool (as :func:`get_reusable_executor`), held until
    :func:`release_executor`: meanwhile it is not shut down or shrunk under the caller.
    ``preload`` names modules its workers should start with (see ProcessPool)."""
    with _lock:
        pool = _get_locked(
            max_workers, options or WorkerOptions(), idle_worker_timeout=idle_worker_timeout
        )
        pool.add_preload(preload)
        _leases.setdefault(pool, []).append(max_workers)
        return pool


def release_executor(pool: ProcessPool, max_workers: int) -> None:
    """Give back a pool taken with :func:`acquire_executor`. Never waits for a lock its own
    thread holds (see the module docstring)."""
    if _lock.held_here():
        _lock.deferred.append((pool, max_workers))
        return
    with _lock:
        counts = _leases.get(pool)
        if counts is None:
            return
        if max_workers in counts:
            counts.remove(max_workers)
        if counts:
            return
        del _leases[pool]
        orphaned = pool is not _executor
    if orphaned:
        pool.shutdown(wait=False, cancel_futures=True)


def _get_locked(
    max_workers: int | None,
    options: WorkerOptions,
    *,
    reuse: bool | Literal["auto"] = "auto",
    kill_workers: bool = False,
    idle_worker_timeout: float | None = 300,
) -> ProcessPool:
    global _executor
    if max_workers is None:
        max_workers = cpu_count()
    current = _executor
    if current is not None and _reusable(current, options, reuse):
        current.idle_worker_timeout = idle_worker_timeout
        if options.thread_limit is not None:
            current.set_thread_limit(options.thread_limit)
        # Never below what a call running on it asked for.
        size = max([max_workers, *_leases.get(current, [])])
        if current.max_workers != size:
            current.resize(size)
        return current
    # A pool that calls still run on is shut down by the last of them to release it.
    if current is not None and (kill_workers or current not in _leases):
        current.shutdown(wait=not kill_workers, cancel_futures=True, kill_workers=kill_workers)
    _executor = ProcessPool.with_options(
        max_workers, options, idle_worker_timeout=idle_worker_timeout
    )
    return _executor


def _reusable(pool: ProcessPool, options: WorkerOptions, reuse: bool | Literal["auto"]) -> bool:
    """Keep ``pool`` for ``options``? Its thread limit does not count: it changes in place."""
    if not current_is_alive(pool):
        return False
    if reuse == "auto":
        return options.replace(thread_limit=pool.options.thread_limit) == pool.options
    return reuse is True


def current_is_alive(pool: ProcessPool) -> bool:
    try:
        pool._check_usable()
    except Exception:
        return False
    return True


def shutdown_reusable_executor(wait: bool = True, *, kill_workers: bool = False) -> None:
    """Shut the shared pool down (a new one starts on the next call that needs it).

    Examples:
        >>> from forklift import get_reusable_executor, shutdown_reusable_executor
        >>> first = get_reusable_executor(max_workers=1)
        >>> shutdown_reusable_executor()
        >>> get_reusable_executor(max_workers=1) is first
        False
        >>> shutdown_reusable_executor()
    """
    global _executor
    with _lock:
        current, _executor = _executor, None
        pools = {*_leases, *([current] if current is not None else [])}
        _leases.clear()
    for pool in pools:
        pool.shutdown(wait=wait, cancel_futures=True, kill_workers=kill_workers)


def warm_up(n_jobs: int = -1, timeout: float | None = 30.0) -> int:
    """Start ``n_jobs`` workers of the shared pool now (-1: all CPUs); returns how many are
    ready. Pays the start-up cost ahead of the first ``Parallel`` call.

    Examples:
        >>> import forklift
        >>> forklift.warm_up(2)  # the workers start now, not in the first call
        2
        >>> forklift.Parallel(n_jobs=2)(forklift.delayed(abs)(-i) for i in range(3))
        [0, 1, 2]
        >>> forklift.shutdown_reusable_executor()
    """
    n_workers = max(1, workers_for_n_jobs(n_jobs))
    # The same BLAS/OpenMP cap the process backend gives a call of n_jobs, so the warm
    # workers are the ones that call will use.
    pool = get_reusable_executor(
        max(n_workers, _current_size()), thread_limit=threads_per_worker(n_workers)
    )
    return pool.warm_up(n_workers, timeout=timeout)


def _current_size() -> int:
    with _lock:
        return _executor.max_workers if _executor is not None else 1
