"""The forklift command, run as a real process against real caches and dump files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from forklift import Memory, dump


def forklift(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forklift", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def square(x: int) -> int:
    return x * x


def cube(x: int) -> int:
    return x**3


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    memory = Memory(tmp_path / "cache", verbose=0)
    for i in range(5):
        memory.cache(square)(i)
    for i in range(3):
        memory.cache(cube)(i)
    return tmp_path / "cache"


def test_help_everywhere() -> None:
    for args in ([], ["cache"], ["cache", "prune"], ["inspect"], ["demo"]):
        done = forklift(*args, "--help")
        assert done.returncode == 0, done.stderr
        assert "usage: forklift" in done.stdout
    assert "exit codes" in forklift("--help").stdout
    assert forklift().returncode == 2  # no command: usage


def test_cache_list_table_and_json(cache: Path) -> None:
    done = forklift("cache", "list", str(cache))
    assert done.returncode == 0, done.stderr
    assert "test_cli.square" in done.stdout and "test_cli.cube" in done.stdout
    rows = json.loads(forklift("cache", "list", str(cache), "--json").stdout)
    counts = {row["function"].rsplit(".", 1)[-1]: row["entries"] for row in rows}
    assert counts == {"square": 5, "cube": 3}
    assert all(row["size"] > 0 and row["stale_entries"] == 0 for row in rows)


def test_cache_info_shows_stale_versions(cache: Path) -> None:
    record = next(cache.rglob("square/function.json"))
    data = json.loads(record.read_text())
    data["fingerprint"] = "a-newer-version"  # as if the code had changed since
    record.write_text(json.dumps(data))
    info = json.loads(forklift("cache", "info", str(cache), "square", "--json").stdout)
    assert info["functions"] == 1 and info["stale_entries"] == 5
    assert "stale" in forklift("cache", "info", str(cache)).stdout
    pruned = json.loads(forklift("cache", "prune", str(cache), "--stale", "--json").stdout)
    assert pruned["deleted_entries"] == 5
    rows = json.loads(forklift("cache", "list", str(cache), "--json").stdout)
    assert {r["function"].rsplit(".", 1)[-1]: r["stale_entries"] for r in rows} == {
        "square": 0,
        "cube": 0,
    }


def test_cache_prune_to_limits(cache: Path) -> None:
    dry = json.loads(
        forklift("cache", "prune", str(cache), "--max-items", "2", "--dry-run", "--json").stdout
    )
    assert dry == {"deleted_entries": 6, "freed_bytes": dry["freed_bytes"], "dry_run": True}
    assert len(json.loads(forklift("cache", "info", str(cache), "--json").stdout)["details"]) == 2
    done = forklift("cache", "prune", str(cache), "--max-items", "2")
    assert done.returncode == 0 and "deleted 6 cached results" in done.stdout
    assert json.loads(forklift("cache", "info", str(cache), "--json").stdout)["entries"] == 2
    old = time.time() - 30 * 86400
    for entry in cache.rglob("code-*/*/*"):
        os.utime(entry, (old, old))
    assert "deleted 2" in forklift("cache", "prune", str(cache), "--max-age", "7d").stdout
    assert forklift("cache", "prune", str(cache)).returncode == 1  # nothing asked for
    assert forklift("cache", "prune", str(cache), "--max-age", "soon").returncode == 2


def test_cache_clear_needs_confirmation(cache: Path) -> None:
    refused = forklift("cache", "clear", str(cache))
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert forklift("cache", "clear", str(cache), "cube", "--yes").returncode == 0
    rows = json.loads(forklift("cache", "list", str(cache), "--json").stdout)
    assert [r["function"].rsplit(".", 1)[-1] for r in rows if r["entries"]] == ["square"]
    assert forklift("cache", "clear", str(cache), "--yes").returncode == 0
    assert json.loads(forklift("cache", "list", str(cache), "--json").stdout) == []


def test_paths_that_are_not_caches(tmp_path: Path) -> None:
    missing = forklift("cache", "list", str(tmp_path / "nowhere"))
    assert missing.returncode == 3 and "no such folder" in missing.stderr
    empty = forklift("cache", "info", str(tmp_path))
    assert empty.returncode == 3 and "not a forklift cache" in empty.stderr
    (tmp_path / "joblib").mkdir()
    assert "joblib cache" in forklift("cache", "list", str(tmp_path)).stderr
    (tmp_path / "file").write_text("x")
    assert forklift("cache", "list", str(tmp_path / "file")).returncode == 3
    assert forklift("cache", "info", str(tmp_path / "file")).returncode == 3


def test_inspect_a_dump_file(tmp_path: Path) -> None:
    path = tmp_path / "model.fkl"
    dump({"weights": np.zeros((300, 400), dtype=np.float32), "name": "m"}, path)
    done = forklift("inspect", str(path))
    assert done.returncode == 0, done.stderr
    assert "<f4" in done.stdout and "300x400" in done.stdout
    report = json.loads(forklift("inspect", str(path), "--json").stdout)
    assert report["arrays"][0]["shape"] == [300, 400]
    assert "numpy" in " ".join(report["globals"])


def test_inspect_refuses_what_is_not_a_dump(tmp_path: Path) -> None:
    corrupted = tmp_path / "broken.fkl"
    dump(list(range(1000)), corrupted)
    corrupted.write_bytes(corrupted.read_bytes()[:40])
    done = forklift("inspect", str(corrupted))
    assert done.returncode == 3 and "broken.fkl" in done.stderr
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert forklift("inspect", str(text)).returncode == 3
    assert forklift("inspect", str(tmp_path / "missing.fkl")).returncode == 3
    assert forklift("inspect", str(tmp_path)).returncode == 3


def test_demo_prints_the_speed_up_the_cpus_and_whether_the_machine_was_busy() -> None:
    done = forklift("demo", "--files", "4", "--n-jobs", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("CPUs)")  # how many it had
    assert any(line.strip().startswith("starting 2 workers:") for line in lines)
    (speed_up,) = [line for line in lines if "results; speed-up" in line]
    assert "same 4 results" in speed_up and "x with 2 workers on" in speed_up
    (first,) = [i for i, line in enumerate(lines) if line.startswith("  the machine was ")]
    verdict = " ".join(line.strip() for line in lines[first:])
    assert verdict.startswith(("the machine was busy", "the machine was idle"))
    assert "load average" in verdict and "the workers" in verdict


def test_the_demos_verdict_follows_what_was_measured() -> None:
    from forklift.cli.demo import _machine_verdict

    idle = " ".join(_machine_verdict(0.05, 2, loop_share=0.99, workers_share=0.97).split())
    assert "idle" in idle and "0.05 on 2 CPUs" in idle and "97%" in idle
    assert "busy" in _machine_verdict(3.5, 2, loop_share=0.99, workers_share=0.97)
    assert "busy" in _machine_verdict(0.0, 2, loop_share=0.6, workers_share=0.5)
    assert "load average unknown" in _machine_verdict(None, 8, 0.99, 0.99)
