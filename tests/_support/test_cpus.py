from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from forklift._support.cpus import cgroup_cpu_limit, cpu_count, physical_core_count


def test_cpu_count_is_positive_and_bounded_by_affinity() -> None:
    assert 1 <= cpu_count() <= len(os.sched_getaffinity(0))
    assert 1 <= cpu_count(only_physical_cores=True) <= cpu_count()


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 2  # 1.5 CPUs rounds up
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    folder = tmp_path / "cpu,cpuacct"
    folder.mkdir()
    (folder / "cpu.cfs_quota_us").write_text("50000\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1
    (folder / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_no_cgroup_files_means_no_limit(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path) is None


def test_physical_cores_from_cpuinfo(tmp_path: Path) -> None:
    block = "processor\t: {n}\nphysical id\t: 0\ncore id\t\t: {core}\n\n"
    text = "".join(block.format(n=n, core=n // 2) for n in range(4))  # 2 cores x 2 threads
    (tmp_path / "cpuinfo").write_text(text)
    assert physical_core_count(tmp_path / "cpuinfo") == 2
    (tmp_path / "empty").write_text("processor : 0\n\n")
    assert physical_core_count(tmp_path / "empty") is None


def _count_in_child(env: dict[str, str], pin_to: set[int] | None = None) -> int:
    code = "from forklift import cpu_count; print(cpu_count())"
    preexec = (lambda: os.sched_setaffinity(0, pin_to)) if pin_to else None
    output = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=preexec,
    ).stdout
    return int(output)


def test_environment_override_in_a_real_process() -> None:
    assert _count_in_child({"FORKLIFT_MAX_CPU_COUNT": "1"}) == 1
    assert _count_in_child({"LOKY_MAX_CPU_COUNT": "1"}) == 1
    # An override can lower the count, never raise it above what the machine gives.
    assert _count_in_child({"FORKLIFT_MAX_CPU_COUNT": "999"}) == cpu_count()
    assert _count_in_child({"FORKLIFT_MAX_CPU_COUNT": "junk"}) == cpu_count()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to pin to 1")
def test_affinity_is_honoured_in_a_real_process() -> None:
    assert _count_in_child({}, pin_to={min(os.sched_getaffinity(0))}) == 1
