"""forklift: parallel loops, disk caching and fast persistence, with joblib's API.

Switch from joblib by changing one import::

    from forklift import Parallel, delayed
    Parallel(n_jobs=-1)(delayed(f)(x) for x in xs)

Names are imported on first use, so ``import forklift`` stays fast and pulls in no optional
dependency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forklift._support.lazy_exports import load_export

__version__ = "0.1.0.dev0"

# The public names: name -> the module that defines it (imported on first use).
_EXPORTS = {
    "Parallel": "forklift.parallel.api",
    "delayed": "forklift.parallel.api",
    "effective_n_jobs": "forklift.parallel.api",
    "parallel_config": "forklift.config",
    "parallel_backend": "forklift.config",
    "register_parallel_backend": "forklift.parallel.backends.registry",
    "ParallelBackendBase": "forklift.parallel.backends.base",
    "cpu_count": "forklift._support.cpus",
    "ForkliftError": "forklift.errors",
    "TerminatedWorkerError": "forklift.errors",
    "Memory": "forklift.cache.memory",
    "MemorizedResult": "forklift.cache.memoized",
    "expires_after": "forklift.cache.policies",
    "register_store_backend": "forklift.cache.stores.registry",
    "StoreBackendBase": "forklift.cache.stores.base",
    "dump": "forklift.persist",
    "load": "forklift.persist",
    "register_compressor": "forklift.persist",
    "hash": "forklift.hashing",
    "Logger": "forklift.progress.log_helpers",
    "PrintTime": "forklift.progress.log_helpers",
    "wrap_non_picklable_objects": "forklift.parallel.wrapping",
    "TaskFailure": "forklift.parallel.failures",
    "TaskTimeoutError": "forklift.errors",
    "TempSpaceError": "forklift.errors",
    "task_rng": "forklift.parallel.randomness",
    "task_seed": "forklift.parallel.randomness",
    "worker_state": "forklift._support.worker_state",
    "get_reusable_executor": "forklift.pool",
    "warm_up": "forklift.pool",
    "shutdown_reusable_executor": "forklift.pool",
    "inspect_file": "forklift.persist",
    "FileReport": "forklift.persist",
    "SAFE_GLOBALS": "forklift.persist",
}

# Derived: one list of public names. The TYPE_CHECKING imports below repeat it for type
# checkers and IDEs (which cannot read a dict); tests/test_public_api.py checks they agree.
__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - derived on purpose: one list, not two

if TYPE_CHECKING:
    from forklift._support.cpus import cpu_count as cpu_count
    from forklift._support.worker_state import worker_state as worker_state
    from forklift.cache.memoized import MemorizedResult as MemorizedResult
    from forklift.cache.memory import Memory as Memory
    from forklift.cache.policies import expires_after as expires_after
    from forklift.cache.stores.base import StoreBackendBase as StoreBackendBase
    from forklift.cache.stores.registry import register_store_backend as register_store_backend
    from forklift.config import parallel_backend as parallel_backend
    from forklift.config import parallel_config as parallel_config
    from forklift.errors import ForkliftError as ForkliftError
    from forklift.errors import TaskTimeoutError as TaskTimeoutError
    from forklift.errors import TempSpaceError as TempSpaceError
    from forklift.errors import TerminatedWorkerError as TerminatedWorkerError
    from forklift.hashing import hash as hash
    from forklift.parallel.api import Parallel as Parallel
    from forklift.parallel.api import delayed as delayed
    from forklift.parallel.api import effective_n_jobs as effective_n_jobs
    from forklift.parallel.backends.base import ParallelBackendBase as ParallelBackendBase
    from forklift.parallel.backends.registry import (
        register_parallel_backend as register_parallel_backend,
    )
    from forklift.parallel.failures import TaskFailure as TaskFailure
    from forklift.parallel.randomness import task_rng as task_rng
    from forklift.parallel.randomness import task_seed as task_seed
    from forklift.parallel.wrapping import wrap_non_picklable_objects as wrap_non_picklable_objects
    from forklift.persist import SAFE_GLOBALS as SAFE_GLOBALS
    from forklift.persist import FileReport as FileReport
    from forklift.persist import dump as dump
    from forklift.persist import inspect_file as inspect_file
    from forklift.persist import load as load
    from forklift.persist import register_compressor as register_compressor
    from forklift.pool import get_reusable_executor as get_reusable_executor
    from forklift.pool import shutdown_reusable_executor as shutdown_reusable_executor
    from forklift.pool import warm_up as warm_up
    from forklift.progress.log_helpers import Logger as Logger
    from forklift.progress.log_helpers import PrintTime as PrintTime


def __getattr__(name: str) -> Any:
    return load_export(__name__, _EXPORTS, globals(), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
