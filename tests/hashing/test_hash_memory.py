"""Hashing a 1 GB array keeps memory flat: no pickling, no copy of the data."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numpy")
pytest.importorskip("psutil")

# Peak RSS (ru_maxrss, KiB on Linux) may grow by at most this much while hashing.
BOUND_MB = 64

SCRIPT = textwrap.dedent(
    """
    import json, resource, psutil, numpy as np
    from forklift.hashing import hash

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    process = psutil.Process()
    a = np.ones(1 << 27)  # 1 GiB of float64, pages touched
    hash(np.ones(10))  # import and warm up everything once
    before_peak, before_rss = peak_mb(), process.memory_info().rss / 2**20
    results = {"contiguous": hash(a)}
    results["contiguous peak"] = peak_mb() - before_peak
    results["fortran"] = hash(a.reshape(1 << 14, 1 << 13).T)
    results["fortran peak"] = peak_mb() - before_peak
    results["strided"] = hash(a.reshape(1 << 14, 1 << 13)[:, ::2])  # 512 MB, copied in blocks
    results["strided peak"] = peak_mb() - before_peak
    results["rss growth"] = process.memory_info().rss / 2**20 - before_rss
    print(json.dumps(results))
    """
)


@pytest.mark.slow
def test_hashing_a_1gb_array_keeps_memory_flat() -> None:
    if sys.platform != "linux":
        pytest.skip("ru_maxrss units differ off Linux")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=110, check=False
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["contiguous peak"] < BOUND_MB, results
    assert results["fortran peak"] < BOUND_MB, results
    assert results["strided peak"] < BOUND_MB, results
    assert results["rss growth"] < BOUND_MB, results
    assert results["contiguous"] != results["strided"]
