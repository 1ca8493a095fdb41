"""make bench keeps working: every benchmark module runs in quick mode and reports."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks.harness import TABLE_HEADER, Scenario, format_table, load_note, run_scenario

pytest.importorskip("joblib")

BENCH = [sys.executable, "-m", "benchmarks"]


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
    assert TABLE_HEADER in done.stdout
    results = json.loads(out.read_text())["results"]
    modules = sorted(
        p.stem for p in (Path(__file__).parent.parent / "benchmarks").glob("bench_*.py")
    )
    assert len(results) >= len(modules)
    assert all(all(value > 0 for value in result["medians"].values()) for result in results)


def test_the_table_shows_forklift_joblib_the_ratio_and_the_goal() -> None:
    order: list[str] = []

    def runner(name: str, value: float) -> Any:
        def run() -> float:
            order.append(name)
            return value

        return run

    scenario = Scenario(
        "sum",
        runners={n: runner(n, v) for n, v in [("forklift", 1.0), ("joblib", 4.0), ("stdlib", 2.0)]},
        target=0.5,
        repeats=9,
    )
    result = run_scenario(scenario, rounds=3)
    assert order.count("forklift") == 1 + 3  # a warm-up round, then the rounds asked for
    assert len({tuple(order[i : i + 3]) for i in range(0, 12, 3)}) > 1  # orders vary
    table = format_table([result])
    assert table.splitlines()[0] == TABLE_HEADER
    assert "| sum | 1.00 s | 4.00 s | 0.250 | ≤ 0.5 | yes | stdlib 2.00 s |" in table
    assert "Medians of 3 rounds" in table
    other = dataclasses.replace(result, subject="dask", baseline="threading", target=0.1)
    other.medians = {"dask": 3.0, "threading": 1.5}
    other.ratio = 2.0
    assert "| sum | dask 3.00 s | threading 1.50 s | 2.000 | ≤ 0.1 | NO | - |" in format_table(
        [other]
    )
    memory = dataclasses.replace(result, unit="x", target=1.1, target_of="subject")
    memory.medians = {"forklift": 1.05, "joblib": 2.1}
    memory.ratio = 0.5
    assert "| sum | 1.05x | 2.10x | 0.500 | ≤ 1.1x (forklift's own) | yes | - |" in format_table(
        [memory]
    )


@pytest.mark.slow
def test_one_scenario_by_keyword_with_rounds(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [*BENCH, "--quick", "--rounds", "1", "--out", str(out), "-k", "the same 40 MB"],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = json.loads(out.read_text())["results"]
    assert result["scenario"] == "16 tasks given the same 40 MB array" and result["rounds"] == 1
    assert "Medians of 1 rounds" in done.stdout
    assert "Load average" in done.stdout  # how busy the machine was, measured


def test_the_load_note_says_whether_the_machine_was_busy() -> None:
    cpus = os.cpu_count() or 1
    assert "a quiet machine" in load_note(0.0, 0.1)
    assert "a busy machine" in load_note(0.1, cpus * 2.0)
    assert "unknown" in load_note(None, 1.0)
