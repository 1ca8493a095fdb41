"""Per-worker state: what a backend's ``initializer`` returned, reachable from tasks.

``Parallel(initializer=load_model)`` runs ``load_model()`` once in each worker (thread or
process); a task then gets the model with :func:`forklift.worker_state`. Thread workers keep
their own value; a process worker keeps one for the whole process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["run_initializer", "set_worker_state", "worker_state"]

_UNSET: Any = object()
_process_state: Any = _UNSET
_thread_state = threading.local()


def set_worker_state(value: Any, *, per_thread: bool = True) -> None:
    global _process_state
    if per_thread:
        _thread_state.value = value
    else:
        _process_state = value


def run_initializer(
    initializer: Callable[..., Any], initargs: Sequence[Any], *, per_thread: bool = True
) -> None:
    """Call ``initializer(*initargs)`` and keep what it returns as this worker's state."""
    set_worker_state(initializer(*initargs), per_thread=per_thread)


def worker_state() -> Any:
    """What this worker's ``initializer`` returned.

    Raises LookupError outside a worker whose backend was given an initializer.

    Examples:
        Each worker builds its state once; every task it runs reuses it:

        >>> from forklift import Parallel, delayed, worker_state
        >>> def open_lookup(scale):
        ...     return {"scale": scale}          # e.g. load a model, open a connection
        >>> def scaled(x):
        ...     return x * worker_state()["scale"]
        >>> Parallel(n_jobs=2, backend="threading", initializer=open_lookup, initargs=(10,))(
        ...     delayed(scaled)(x) for x in range(4)
        ... )
        [0, 10, 20, 30]
    """
    value = getattr(_thread_state, "value", _UNSET)
    if value is _UNSET:
        value = _process_state
    if value is _UNSET:
        raise LookupError(
            "worker_state() is set by the initializer of a Parallel backend "
            "(Parallel(..., initializer=f)); this worker has none"
        )
    return value
