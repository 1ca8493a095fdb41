"""Which backend, and how many workers, a call gets: the rules in one place.

Order of decisions:

1. A backend passed to ``Parallel`` wins; else the innermost ``parallel_config``'s; else the
   default (``loky``, forklift's process pool), or ``threading`` when ``prefer="threads"``.
   Inside a worker, a call that names no backend uses the outer backend's nested backend, so
   nested calls do not multiply workers. A backend written for joblib is adapted; a
   ``multiprocessing`` context means the ``multiprocessing`` backend with that context.
2. ``require="sharedmem"`` needs workers that share memory: a backend without that capability
   is replaced by ``threading`` - unless it was passed to ``Parallel`` explicitly, which is an
   error (the two wishes contradict each other).
3. ``n_jobs``: None means the configured value, else the backend's ``default_n_jobs`` (1 for
   local backends, the whole cluster for dask and ray). The backend turns it into a worker
   count; one worker of a local backend means running inline (the sequential backend).

Names, on the way down: ``n_jobs`` is what the user asked for (None, positive, or negative
counting back from the CPUs, validated once by :func:`forklift.config.resolve_settings`);
``n_workers`` is how many workers that means for this backend
(:func:`forklift._support.cpus.workers_for_n_jobs` for local ones), passed to
``backend.start(n_workers)``; the process pool calls its own size ``max_workers``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from forklift.config import Settings
from forklift.errors import ConfigurationError
from forklift.parallel.backends import registry
from forklift.parallel.backends.base import Backend
from forklift.parallel.backends.joblib_style import is_multiprocessing_context
from forklift.progress.verbose import display_name

__all__ = ["Selection", "check_entered_settings", "select_backend"]

_LOCAL_BACKENDS = frozenset({"sequential", "threading", "loky", "multiprocessing"})


@dataclasses.dataclass
class Selection:
    """The backend made for a call, the workers it will start, and the ``n_jobs`` asked."""

    backend: Backend
    n_workers: int
    n_jobs: int | None


def select_backend(
    settings: Settings,
    *,
    explicit_backend: bool,
    backend_params: dict[str, Any] | None = None,
    count_workers: bool = True,
) -> Selection:
    """Create the backend ``settings`` call for and count its workers (unless told not to:
    a check that only looks at the backend's capabilities need not ask a cluster)."""
    params = {**settings.backend_params, **(backend_params or {})}
    choice = settings.backend
    if choice is None:
        choice = "threading" if settings.prefer == "threads" else registry.default_backend_name()

    backend: Backend
    if isinstance(choice, str):
        backend = registry.create_backend(choice, params)
    elif is_multiprocessing_context(choice):
        backend = registry.create_backend("multiprocessing", {**params, "context": choice})
    else:
        backend = registry.as_backend(choice)

    if settings.require == "sharedmem" and not backend.capabilities.shares_memory:
        if explicit_backend:
            raise ConfigurationError(
                f"Backend {backend.name!r} does not support shared memory: require='sharedmem' "
                "needs workers that share the caller's memory, and this backend runs them "
                "elsewhere; drop one of the two, or use backend='threading'"
            )
        backend = registry.create_backend("threading", {})

    n_jobs = settings.n_jobs  # validated once, when the settings were resolved
    if not count_workers:
        return Selection(backend, 0, n_jobs)
    wanted = backend.capabilities.default_n_jobs if n_jobs is None else n_jobs
    n_workers = max(1, backend.effective_n_jobs(wanted))
    if n_workers == 1 and backend.name in _LOCAL_BACKENDS and backend.name != "sequential":
        backend = registry.create_backend("sequential", {})
    return Selection(backend, n_workers, n_jobs)


def check_entered_settings(settings: Settings, set_here: frozenset[str]) -> None:
    """Refuse a ``parallel_config`` block as it is entered, as joblib does: a backend name
    nobody registered, or ``inner_max_num_threads`` for a backend that would ignore it."""
    if isinstance(settings.backend, str):
        registry.find_factory(settings.backend)
    if "inner_max_num_threads" not in set_here or settings.inner_max_num_threads is None:
        return
    backend = select_backend(settings, explicit_backend=False, count_workers=False).backend
    if backend.capabilities.limits_inner_threads:
        return
    # "... does not accept setting the inner_max_num_threads argument" is joblib's phrase.
    raise ConfigurationError(
        f"{display_name(backend.name, type(backend).__name__)} does not accept setting the "
        f"inner_max_num_threads argument: backend {backend.name!r} cannot cap the threads of "
        "its workers; drop inner_max_num_threads, or use backend='loky'"
    )
