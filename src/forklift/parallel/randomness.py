"""Reproducible randomness: every task gets its own random stream from one seed.

With ``Parallel(seed=...)`` each task can ask for :func:`task_rng` (a numpy ``Generator``)
or :func:`task_seed` (an int, for ``random.Random``). The stream depends only on the seed and
the task's position in the input - numpy's ``SeedSequence`` spawn-key scheme - so results do
not depend on ``n_jobs``, the backend, batching or which worker ran the task.

The position and seed reach the task through a ContextVar that the batch runner sets around
each call; outside a seeded run both functions raise a clear error.
"""

from __future__ import annotations

import hashlib
from typing import Any

from forklift._support.task_context import TaskContext, current_task
from forklift.errors import ConfigurationError

__all__ = ["task_rng", "task_seed"]


def _context() -> TaskContext:
    context = current_task.get()
    if context is None or context.seed is None:
        raise ConfigurationError(
            "task_rng()/task_seed() give each task its own random stream; call them inside a "
            "task of a Parallel(..., seed=<int>) run"
        )
    return context


def task_rng() -> Any:
    """A ``numpy.random.Generator`` for this task, derived from the run's seed and the
    task's position: the same values whichever worker runs it.

    Examples:
        >>> from forklift import Parallel, delayed, task_rng
        >>> def draw(_):
        ...     return int(task_rng().integers(1000))
        >>> one = Parallel(n_jobs=1, seed=42)(delayed(draw)(i) for i in range(6))
        >>> two = Parallel(n_jobs=2, backend="threading", seed=42)
        >>> one == two(delayed(draw)(i) for i in range(6)), len(set(one)) > 1
        (True, True)
    """
    import numpy as np

    context = _context()
    sequence = np.random.SeedSequence(entropy=context.seed, spawn_key=(context.index,))
    return np.random.default_rng(sequence)


def task_seed() -> int:
    """A 64-bit integer seed for this task (for ``random.Random(task_seed())``), derived
    from the run's seed and the task's position.

    Examples:
        >>> import random
        >>> from forklift import Parallel, delayed, task_seed
        >>> def shuffled(items):
        ...     random.Random(task_seed()).shuffle(items)
        ...     return items
        >>> runs = [
        ...     Parallel(n_jobs=n_jobs, backend="threading", seed=7)(
        ...         delayed(shuffled)(list(range(5))) for _ in range(3)
        ...     )
        ...     for n_jobs in (1, 2)
        ... ]
        >>> runs[0] == runs[1]
        True
    """
    context = _context()
    digest = hashlib.blake2b(f"{context.seed}:{context.index}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little")
