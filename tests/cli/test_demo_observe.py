"""``forklift demo --progress --trace PATH``: the demo shows its parallel run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _demo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "forklift",
            "demo",
            "--files",
            "4",
            "--backend",
            "threading",
            "--n-jobs",
            "2",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def test_demo_writes_a_trace_and_draws_a_bar(tmp_path: Path) -> None:
    trace = tmp_path / "demo.json"
    done = _demo("--progress", "--trace", str(trace), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"timeline of the parallel run written to {trace}" in done.stdout
    assert "[forklift] Parallel: 4/4 tasks (100%)" in done.stderr  # a pipe: plain lines
    events = json.loads(trace.read_text())["traceEvents"]
    assert sum(1 for e in events if e.get("cat") == "task") == 4


def test_demo_refuses_a_trace_path_it_cannot_write(tmp_path: Path) -> None:
    done = _demo("--trace", "demo.txt", cwd=tmp_path)
    assert done.returncode == 2
    assert "trace must be a path ending in .html" in done.stderr
