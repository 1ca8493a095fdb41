"""How many CPUs this process may really use.

``os.cpu_count()`` counts the machine's CPUs, which is wrong inside a container with a CPU
quota or a process pinned to a few cores. :func:`cpu_count` takes the smallest of:

* the CPUs in this process's affinity mask (``os.sched_getaffinity``);
* the cgroup CPU quota, rounded up (cgroup v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us`` /
  ``cpu.cfs_period_us``);
* the environment override ``FORKLIFT_MAX_CPU_COUNT`` (``LOKY_MAX_CPU_COUNT``, which joblib
  users may already set, is honoured too).

Two rules built on that count live here too, so that every backend, the pool and the CLI
apply the same ones: :func:`workers_for_n_jobs` (what ``n_jobs`` means as a number of
workers: ``-1`` all CPUs, ``-2`` all but one, ...) and :func:`threads_per_worker` (the
BLAS/OpenMP thread cap that gives each of ``n_workers`` processes its share of the CPUs).
"""

from __future__ import annotations

import functools
import math
import os

# Paths are plain strings (os.path), not pathlib: pathlib costs ~4 ms to import, and the
# fork server and every cold start import this module before their first worker.
_Path = str | os.PathLike[str]

__all__ = [
    "CPU_COUNT_ENV_VARS",
    "cgroup_cpu_limit",
    "cpu_count",
    "physical_core_count",
    "threads_per_worker",
    "workers_for_n_jobs",
]

CPU_COUNT_ENV_VARS = ("FORKLIFT_MAX_CPU_COUNT", "LOKY_MAX_CPU_COUNT")
_CGROUP_ROOT = "/sys/fs/cgroup"


def cpu_count(only_physical_cores: bool = False) -> int:
    """Return the number of CPUs this process can use, at least 1.

    With ``only_physical_cores=True`` hyper-threads are not counted (where the machine tells;
    otherwise logical CPUs are counted).

    Examples:
        >>> import os
        >>> from forklift import cpu_count
        >>> 1 <= cpu_count(only_physical_cores=True) <= cpu_count() <= os.cpu_count()
        True
    """
    limits = [_affinity_count(), _own_cgroup_limit()]
    if only_physical_cores:
        limits.append(physical_core_count())
    limits.append(_environment_limit())
    return max(1, min(limit for limit in limits if limit is not None))


def workers_for_n_jobs(n_jobs: int, capacity: int | None = None) -> int:
    """How many workers ``n_jobs`` asks for out of ``capacity`` (default: :func:`cpu_count`).

    A positive ``n_jobs`` is the count itself; a negative one counts back from the capacity,
    ``-1`` meaning all of it, ``-2`` all but one, and never less than one worker. ``n_jobs``
    is already validated (a non-zero int). Clusters pass their own capacity (their threads).

    Examples:
        >>> workers_for_n_jobs(3, capacity=8), workers_for_n_jobs(-1, capacity=8)
        (3, 8)
        >>> workers_for_n_jobs(-2, capacity=8), workers_for_n_jobs(-20, capacity=8)
        (7, 1)
    """
    if n_jobs > 0:
        return n_jobs
    return max((cpu_count() if capacity is None else capacity) + 1 + n_jobs, 1)


def threads_per_worker(n_workers: int) -> int:
    """BLAS/OpenMP threads for each of ``n_workers`` processes: their share of the CPUs, so
    that the workers' inner threads together do not oversubscribe the machine.

    Examples:
        >>> threads_per_worker(cpu_count()), threads_per_worker(1) == cpu_count()
        (1, True)
    """
    return max(1, cpu_count() // max(n_workers, 1))


@functools.cache
def _own_cgroup_limit() -> int | None:
    # A process's cgroup quota is set by whoever started it; reading the files once keeps
    # cpu_count() cheap enough to call on hot paths.
    return cgroup_cpu_limit(_CGROUP_ROOT)


def _affinity_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _environment_limit() -> int | None:
    for name in CPU_COUNT_ENV_VARS:
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                value = int(raw)
            except ValueError:
                continue  # an unreadable override is ignored rather than breaking every call
            if value > 0:
                return value
    return None


def cgroup_cpu_limit(root: _Path) -> int | None:
    """CPUs allowed by the cgroup quota under ``root`` (None when there is no quota)."""
    quota_period = _read_cgroup_v2(root) or _read_cgroup_v1(root)
    if quota_period is None:
        return None
    quota, period = quota_period
    return max(1, math.ceil(quota / period))


def _read_cgroup_v2(root: _Path) -> tuple[int, int] | None:
    try:
        fields = _read_text(os.path.join(root, "cpu.max")).split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return (quota, period) if quota > 0 and period > 0 else None


def _read_cgroup_v1(root: _Path) -> tuple[int, int] | None:
    for folder in (os.path.join(root, "cpu"), os.path.join(root, "cpu,cpuacct"), root):
        try:
            quota = int(_read_text(os.path.join(folder, "cpu.cfs_quota_us")))
            period = int(_read_text(os.path.join(folder, "cpu.cfs_period_us")))
        except (OSError, ValueError):
            continue
        if quota > 0 and period > 0:
            return quota, period
        return None
    return None


def physical_core_count(cpuinfo: _Path = "/proc/cpuinfo") -> int | None:
    """Distinct (physical id, core id) pairs in ``cpuinfo``; None when it does not say."""
    try:
        text = _read_text(cpuinfo)
    except OSError:
        return None
    cores: set[tuple[str, str]] = set()
    physical_id = core_id = None
    for line in [*text.splitlines(), ""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical_id = value.strip()
        elif key == "core id":
            core_id = value.strip()
        elif not key:  # a blank line ends one processor's block
            if core_id is not None:
                cores.add((physical_id or "0", core_id))
            physical_id = core_id = None
    return len(cores) or None


def _read_text(path: _Path) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()
