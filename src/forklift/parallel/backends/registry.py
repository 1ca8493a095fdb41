"""Backend names: the built-in ones, the ones users register, and the default.

A name maps to a factory: a callable taking the backend parameters (``parallel_config``'s
extra keyword arguments) and returning a new backend. Built-in backends whose dependencies
are optional (dask, ray) import them only when their factory runs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from forklift.errors import ConfigurationError, MissingDependencyError, UnknownBackendError
from forklift.parallel.backends.base import Backend

__all__ = [
    "BackendFactory",
    "create_backend",
    "default_backend_name",
    "known_backend_names",
    "register_parallel_backend",
]

BackendFactory = Callable[..., Backend]

_ALIASES = {"processes": "loky"}
_lock = threading.Lock()
_factories: dict[str, BackendFactory] = {}
_default_name = "loky"


def _sequential(**params: Any) -> Backend:
    from forklift.parallel.backends.sequential import SequentialBackend

    _refuse_params("sequential", params)
    return SequentialBackend()


def _threading(**params: Any) -> Backend:
    from forklift.parallel.backends.threads import ThreadingBackend

    return ThreadingBackend(**params)


def _processes(**params: Any) -> Backend:
    from forklift.parallel.backends.processes import ProcessBackend

    return ProcessBackend(**params)


def _multiprocessing(**params: Any) -> Backend:
    from forklift.parallel.backends.multiprocessing import MultiprocessingBackend

    return MultiprocessingBackend(**params)


def _dask(**params: Any) -> Backend:
    from forklift.parallel.backends.dask import DaskBackend

    with _optional_extra("dask", modules=("dask", "distributed")):
        return DaskBackend(**params)


def _ray(**params: Any) -> Backend:
    from forklift.parallel.backends.ray import RayBackend

    with _optional_extra("ray", modules=("ray",)):
        return RayBackend(**params)


@contextlib.contextmanager
def _optional_extra(extra: str, modules: tuple[str, ...]) -> Iterator[None]:
    """Turn "module not installed" into an error that names the extra to install."""
    try:
        yield
    except ImportError as error:
        missing = (error.name or "").partition(".")[0]
        if missing not in modules:
            raise  # something else is broken; do not hide it behind advice to install
        raise MissingDependencyError(
            f"backend={extra!r} needs the {missing!r} package, which is not installed; "
            f"install it with: pip install forklift[{extra}]"
        ) from error


def _refuse_params(name: str, params: dict[str, Any]) -> None:
    if params:
        raise ConfigurationError(
            f"the {name} backend takes no backend parameters, got {sorted(params)}"
        )


_factories.update(
    {
        "sequential": _sequential,
        "threading": _threading,
        "loky": _processes,
        "multiprocessing": _multiprocessing,
        "dask": _dask,
        "ray": _ray,
    }
)


def register_parallel_backend(
    name: str, factory: BackendFactory, make_default: bool = False
) -> None:
    """Make ``backend=name`` use ``factory(**backend_params)``; optionally the default.

    Examples:
        >>> from forklift import Parallel, delayed, register_parallel_backend
        >>> from forklift.parallel.backends.threads import ThreadingBackend
        >>> register_parallel_backend("two-threads", ThreadingBackend)
        >>> Parallel(n_jobs=2, backend="two-threads")(delayed(abs)(-i) for i in range(3))
        [0, 1, 2]
    """
    global _default_name
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a backend name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ConfigurationError(
            f"the factory registered for backend {name!r} must be callable (a backend class "
            f"or a function returning a backend), got {factory!r}"
        )
    with _lock:
        _factories[name] = factory
        if make_default:
            _default_name = name


def default_backend_name() -> str:
    return _default_name


def known_backend_names() -> list[str]:
    with _lock:
        return sorted({*_factories, *_ALIASES})


def canonical_name(name: str) -> str:
    return _ALIASES.get(name, name)


def create_backend(name: str, params: dict[str, Any]) -> Backend:
    """A new backend for ``name``; UnknownBackendError lists the names that exist."""
    with _lock:
        factory = _factories.get(canonical_name(name))
    if factory is None:
        raise UnknownBackendError(
            f"unknown backend {name!r}; known backends are: {', '.join(known_backend_names())}."
            " Register your own with forklift.register_parallel_backend(name, factory)."
        )
    return factory(**params)
