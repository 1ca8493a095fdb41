"""make bench keeps working: every benchmark module runs in quick mode and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("joblib")


@pytest.mark.slow
def test_quick_benchmarks_run_and_report(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| scenario | medians | forklift/joblib | target | met |" in done.stdout
    results = json.loads(out.read_text())["results"]
    modules = sorted(
        p.stem for p in (Path(__file__).parent.parent / "benchmarks").glob("bench_*.py")
    )
    assert len(results) >= len(modules)
    assert all(all(value > 0 for value in result["medians"].values()) for result in results)
