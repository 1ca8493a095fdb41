"""The options that shape a worker process, declared once: :class:`WorkerOptions`.

A pool's workers are made alike by six options: ``initializer`` and ``initargs`` (run once in
each worker), ``env`` (set before anything of the user's runs), ``thread_limit`` (BLAS/OpenMP
threads), ``max_tasks_per_child`` and ``memory_growth_limit`` (when to replace a worker). The
public signatures (:class:`~.executor.ProcessPool`, :func:`~.reusable.get_reusable_executor`,
the ``"loky"`` backend) still spell them out, as joblib's do; each turns them into one frozen
:class:`WorkerOptions` at once, and from there on the options travel as that one value: into
the pool, to each worker (pickled in its ``INIT`` message) and into the reusable pool's
"same options, same pool" test, which is a plain ``==``.

Such a signature takes its options with :meth:`WorkerOptions.from_arguments` (``locals()``):
the fields name what to pick, so the list is written once, here, and a signature that lacks
an option fails at its first call, not silently. Rejected: spelling the six keywords out again
in each body (they were, twice, word for word).

Equality is safe rather than strict: callables compare by identity (a callable object with a
loose ``__eq__`` must not pass for another initializer), and arguments whose ``!=`` raises or
returns no plain truth (a numpy array in ``initargs``) count as different - a new pool is the
safe answer.

Rejected: a ``TypedDict`` (no validation, no equality of its own, mutable) and comparing the
pickled options (cloudpickle output differs for equal closures and is costly for large
``initargs``).

Imports only the standard library: the worker and the fork server load it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from forklift.errors import ConfigurationError

__all__ = ["THREAD_LIMIT_VARIABLES", "WorkerOptions", "check_positive"]

# The environment variables that size the thread pools of BLAS, OpenMP and friends.
THREAD_LIMIT_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


@dataclasses.dataclass(frozen=True, eq=False)
class WorkerOptions:
    """What makes the workers of a pool alike (see the module docstring)."""

    initializer: Callable[..., object] | None = None
    initargs: tuple[Any, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    max_tasks_per_child: int | None = None
    memory_growth_limit: int | None = None
    thread_limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "initargs", tuple(self.initargs))
        object.__setattr__(self, "env", dict(self.env or {}))
        if self.max_tasks_per_child is not None:
            check_positive("max_tasks_per_child", self.max_tasks_per_child)
        if self.thread_limit is not None:
            check_positive("thread_limit", self.thread_limit)

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> WorkerOptions:
        """The options among a public signature's ``arguments`` (its ``locals()``): each
        field's value is the argument of the same name (``env=None`` means no variables)."""
        return cls(**{field.name: arguments[field.name] for field in dataclasses.fields(cls)})

    def replace(self, **changes: Any) -> WorkerOptions:
        return dataclasses.replace(self, **changes)

    def keywords(self) -> dict[str, Any]:
        """The options as keyword arguments (not deep-copied, unlike ``asdict``)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def server_environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """The fork server's environment: ``base``, the thread caps (unless ``base`` sets
        them), then ``env``. Workers inherit it, so limits hold before anything imports."""
        environment = dict(base)
        if self.thread_limit is not None:
            for name in THREAD_LIMIT_VARIABLES:
                environment.setdefault(name, str(self.thread_limit))
        environment.update(self.env)
        return environment

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WorkerOptions):
            return NotImplemented
        for field in dataclasses.fields(self):
            if not _same(getattr(self, field.name), getattr(other, field.name)):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]  # holds a dict and arbitrary initargs


def _same(value: object, previous: object) -> bool:
    if callable(value) or callable(previous):
        return value is previous
    try:
        return bool(value == previous)
    except Exception:
        return False


def check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
