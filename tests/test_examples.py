"""Every script in examples/ runs and prints what it should (scaled down where it sleeps)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
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
    "seed000_backends.py": ["loky (CPU work):", "threading (NumPy):", "sequential:"],
    "seed000_feature_pipeline.py": [
        "Processing 5 files in parallel...",
        "Done   5 out of   5",
        "python.txt      words=400",
    ],
    "seed000_sklearn_parallel.py": ["CV scores:", "Best params:"],
    "seed001_joblib1.py": [
        "Partial results: [55, 113]",
        "Total sum of squares: 168",
        "Pool workers: [55, 113]",
        "Shared memory: [55, 113]",
    ],
    "seed001_multiprocessing.py": ["Partial results: [55, 113]", "Total sum of squares: 168"],
    "progress_bar.py": ["40 tasks done"],
    "large_arrays.py": [
        "workers saw: [('memmap', 'array-1.bin')]",
        "row means match: True",
        "left in temp_folder after the call: []",
        "results: ['1,000,000 values', '1,000,000 values'",
    ],
    "resumable_run.py": [
        "55 simulations done, 5 failed: TaskFailure(task 5, simulate(): ValueError"
    ],
    "safe_load.py": ["system", "10\n", "refused:"],
    "cache_cli.py": ["$ forklift cache list", "deleted 3 cached results"],
    "dask_backend.py": ["column means: [499995,", "squares: [0, 1, 4, 9, 16, 25, 36, 49]"],
    "ray_backend.py": ["column means: [499995,", "squares: [0, 1, 4, 9, 16, 25, 36, 49]"],
}
# Lines that must appear exactly once (the cache hit must not recompute).
ONCE = {
    "seed000_caching.py": "with scale=2.0",
    "seed001_memory.py": "is calculating square 9",
}
# Examples that start a real cluster: they need an optional extra, and take seconds.
NEEDS_MODULE = {
    "dask_backend.py": "distributed",
    "ray_backend.py": "ray",
    "seed000_sklearn_parallel.py": "sklearn",
}
CLUSTER = {"dask_backend.py", "ray_backend.py"}


def test_every_example_has_an_expectation() -> None:
    scripts = [p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")]
    assert sorted(scripts) == sorted(EXPECTED)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[pytest.mark.cluster, pytest.mark.slow])
        if name in CLUSTER
        else pytest.param(name, marks=pytest.mark.slow)
        if name in NEEDS_MODULE
        else name
        for name in sorted(EXPECTED)
    ],
)
def test_example_runs(name: str, tmp_path: Path) -> None:
    if name in NEEDS_MODULE:
        pytest.importorskip(NEEDS_MODULE[name])
    env = {**os.environ, "FORKLIFT_EXAMPLE_SCALE": "0.05"}
    scratch = None
    if name in CLUSTER:
        # Cluster engines keep scratch files in the temp dir: give them one of their own,
        # short, since ray's socket paths must fit in 107 characters.
        scratch = tempfile.mkdtemp(prefix="fl-", dir="/tmp")
        env["TMPDIR"] = scratch
    try:
        completed = subprocess.run(
            [sys.executable, str(EXAMPLES / name)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    assert completed.returncode == 0, completed.stderr
    output = completed.stdout + completed.stderr  # verbose lines go to stderr, as joblib's
    for expected in EXPECTED[name]:
        assert expected in output, output
    if name in ONCE:
        assert completed.stdout.count(ONCE[name]) == 1, completed.stdout
