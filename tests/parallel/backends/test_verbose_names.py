"""verbose lines name the backend as joblib does (LokyBackend, not forklift's class name)."""

from __future__ import annotations

import pytest

from forklift import Parallel, delayed


@pytest.mark.parametrize(
    ("backend", "shown"),
    [
        ("loky", "LokyBackend"),
        ("processes", "LokyBackend"),
        ("multiprocessing", "MultiprocessingBackend"),
        ("threading", "ThreadingBackend"),
    ],
)
def test_the_first_verbose_line_uses_joblibs_backend_name(
    backend: str, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Parallel(n_jobs=2, backend=backend, verbose=1)(delayed(abs)(-i) for i in range(4))
    first = capsys.readouterr().err.splitlines()[0]
    assert first == f"[Parallel(n_jobs=2)]: Using backend {shown} with 2 concurrent workers."
