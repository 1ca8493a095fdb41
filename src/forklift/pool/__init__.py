"""forklift's own process pool: a ``concurrent.futures.Executor`` and a shared, reusable one.

* :class:`ProcessPool` (:mod:`.executor`): the pool, its manager thread and the data flow.
* :func:`get_reusable_executor`, :func:`shutdown_reusable_executor`, :func:`warm_up`
  (:mod:`.reusable`): the process-wide pool that ``Parallel``'s default backend uses.
* :class:`SharingScope` (:mod:`.sharing`): send a function once per worker, not per task.
* ``_server`` (the fork server), ``_worker`` (the worker loop), ``_launcher``,
  ``_protocol``: the processes and the wire between them.

Names load on first use: the fork server imports ``forklift.pool._server`` and must not pay
for the pool's own machinery.

Layer 2: imports only :mod:`forklift.errors`, :mod:`forklift._support`, the standard library
and cloudpickle; it never reads :mod:`forklift.config` (explicit arguments only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forklift._support.lazy_exports import load_export

if TYPE_CHECKING:
    from forklift.pool.executor import ProcessPool
    from forklift.pool.reusable import (
        get_reusable_executor,
        shutdown_reusable_executor,
        warm_up,
    )
    from forklift.pool.sharing import SharingScope

__all__ = [
    "ProcessPool",
    "SharingScope",
    "get_reusable_executor",
    "shutdown_reusable_executor",
    "warm_up",
]

_HOMES = {
    "ProcessPool": "forklift.pool.executor",
    "SharingScope": "forklift.pool.sharing",
    "get_reusable_executor": "forklift.pool.reusable",
    "shutdown_reusable_executor": "forklift.pool.reusable",
    "warm_up": "forklift.pool.reusable",
}


def __getattr__(name: str) -> Any:
    return load_export(__name__, _HOMES, globals(), name)
