"""Backend names: the built-in ones, the ones users register, and the default.

A name maps to a factory: a callable taking the backend parameters (``parallel_config``'s
extra keyword arguments) and returning a new backend. Built-in backends whose dependencies
are optional (dask, ray) import them only when their factory runs. A factory may return a
backend written for joblib (a joblib ``ParallelBackendBase`` subclass, or a class with the same
methods): :func:`create_backend` wraps it in
:class:`~forklift.parallel.backends.joblib_style.JoblibStyleBackend`.

Names are looked up here first, then in the lookups added with :func:`add_name_lookup` (the
joblib bridge adds joblib's own registry, so ``register_spark()`` makes ``backend="spark"``
work). forklift's own names therefore win: ``"ray"`` is forklift's ray backend even after
``ray.util.joblib.register_ray()``; register ray's joblib class under another name to use it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from forklift.config import load_plugins
from forklift.errors import ConfigurationError, MissingDependencyError, UnknownBackendError
from forklift.parallel.backends.base import Backend, ParallelBackendBase
from forklift.parallel.backends.joblib_style import JoblibStyleBackend, is_joblib_style

__all__ = [
    "BackendFactory",
    "add_name_lookup",
    "as_backend",
    "create_backend",
    "find_factory",
    "default_backend_name",
    "known_backend_names",
    "register_parallel_backend",
]

BackendFactory = Callable[..., Backend]

_ALIASES = {"processes": "loky"}
_lock = threading.Lock()
_factories: dict[str, BackendFactory] = {}
_default_name = "loky"
# Other registries consulted for names forklift does not know (joblib's, via the bridge).
_lookups: list[Callable[[str], Callable[..., Any] | None]] = []


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

    ``factory`` may be a forklift backend class, or a backend class written for joblib (a
    subclass of joblib's ``ParallelBackendBase``, such as ray's ``RayBackend``): forklift
    adapts the latter (see :mod:`forklift.parallel.backends.joblib_style`).

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


def add_name_lookup(lookup: Callable[[str], Callable[..., Any] | None]) -> None:
    """Consult ``lookup(name)`` for names not registered here (once per lookup)."""
    with _lock:
        if lookup not in _lookups:
            _lookups.append(lookup)


def find_factory(name: str) -> Callable[..., Any]:
    """The factory for ``name``; UnknownBackendError (with joblib's wording) if none."""
    with _lock:
        factory = _factories.get(canonical_name(name))
        lookups = list(_lookups)
    if factory is None and not lookups:
        load_plugins()  # they add lookups (joblib's registry)
        with _lock:
            lookups = list(_lookups)
    for lookup in lookups:
        if factory is not None:
            break
        factory = lookup(name)
    if factory is None:
        # "Invalid backend: ..., expected one of" is joblib's phrase; code matches on it.
        raise UnknownBackendError(
            f"Invalid backend: {name}, expected one of {known_backend_names()}: no backend "
            "is registered under that name; register your own with "
            "forklift.register_parallel_backend(name, factory)"
        )
    return factory


def create_backend(name: str, params: dict[str, Any]) -> Backend:
    """A new backend for ``name``; UnknownBackendError lists the names that exist."""
    return as_backend(find_factory(name)(**params), name=name)


def as_backend(candidate: object, name: str | None = None) -> Backend:
    """``candidate`` as a forklift backend: itself, or a joblib-style backend adapted."""
    if is_joblib_style(candidate):
        return JoblibStyleBackend(candidate, name=name)
    # The base class first: the built-in backends subclass it, and an isinstance check
    # against the runtime protocol costs ~25 us (it inspects the protocol's members).
    if isinstance(candidate, (ParallelBackendBase, Backend)):
        return candidate
    raise ConfigurationError(
        f"backend must be a backend name ({', '.join(known_backend_names())}), a forklift "
        "backend (see forklift.ParallelBackendBase), a joblib-style backend (with "
        "effective_n_jobs, configure and submit) or a multiprocessing context, got "
        f"{candidate!r}"
    )
