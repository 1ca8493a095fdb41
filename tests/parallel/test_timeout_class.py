"""``Parallel(timeout=...)`` raises what joblib users catch: ``multiprocessing.TimeoutError``.

joblib raises :class:`multiprocessing.TimeoutError` (not the builtin); forklift's
:class:`~forklift.errors.ParallelTimeoutError` is both, so either ``except`` clause works.
"""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from forklift import Parallel, delayed
from forklift.errors import ForkliftError, ParallelTimeoutError


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_timeout_is_caught_as_multiprocessing_timeout_error(backend: str) -> None:
    release = threading.Event()
    try:
        with pytest.raises(multiprocessing.TimeoutError) as caught:
            Parallel(n_jobs=2, backend=backend, timeout=0.3)(
                delayed(_wait)(release if backend == "threading" else None) for _ in range(4)
            )
    finally:
        release.set()
    error = caught.value
    assert isinstance(error, ParallelTimeoutError)
    assert isinstance(error, TimeoutError)  # the builtin, as before
    assert isinstance(error, ForkliftError)
    assert "timeout=0.3" in str(error)


def _wait(release: threading.Event | None) -> None:
    if release is None:
        import time

        time.sleep(5)
    else:
        release.wait(5)
