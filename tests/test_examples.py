"""Every script in examples/ runs and prints what it should (scaled down where it sleeps)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"

EXPECTED = {
    "seed000_quick_parallel.py": ["Parallel: [0, 1, 4, 9, 16, 25, 36, 49]", "Speedup:"],
    "seed001_share_data.py": ["[np.float64(0.", "]"],
    "seed002_cube_threads.py": ["[1, 8, 27, 64, 125]"] * 3,
    "seed000_caching.py": [
        "[COMPUTING] Loading data/features.npy with scale=2.0",
        "Second call (cache hit):",
        "[COMPUTING] Loading data/features.npy with scale=3.0",
    ],
    "seed001_memory.py": ["Total time:", "285\n285"],
    "seed001_dump_load.py": ["[1, 2, 3, 4, 5, 6, 7, 8, 9]"],
}
# Lines that must appear exactly once (the cache hit must not recompute).
ONCE = {
    "seed000_caching.py": "with scale=2.0",
    "seed001_memory.py": "is calculating square 9",
}


def test_every_example_has_an_expectation() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


# The interim process backend (stdlib forkserver) re-imports a script's __main__, so scripts
# without a main guard fail on it; forklift's own pool (issue 3) lifts this.
NEEDS_OWN_POOL = pytest.mark.xfail(
    strict=True, reason="interim process backend re-runs unguarded __main__ (issue 3)"
)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=NEEDS_OWN_POOL)
        if name in ("seed000_quick_parallel.py", "seed002_cube_threads.py")
        else name
        for name in sorted(EXPECTED)
    ],
)
def test_example_runs(name: str, tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        env={**os.environ, "FORKLIFT_EXAMPLE_SCALE": "0.05"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    for expected in EXPECTED[name]:
        assert expected in completed.stdout, completed.stdout
    if name in ONCE:
        assert completed.stdout.count(ONCE[name]) == 1, completed.stdout
