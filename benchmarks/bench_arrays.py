"""Large arrays to and from process workers, forklift against joblib, in one run.

Scenarios (issue 16's targets):

* 16 tasks each given the same 400 MB array (each task takes one row's mean): wall time,
  forklift/joblib **<= 0.5**;
* memory, with 16 tasks that each read the whole array (so every page of it is mapped in the
  workers): the peak, during the call, of the summed proportional set size (PSS, from
  ``/proc/<pid>/smaps_rollup``) of the caller and its workers, minus the same sum just before
  the array was made, as a multiple of the array's size: **<= 1.1** for forklift itself
  (the goal is on forklift's own figure; the ratio column still compares it with joblib's);
* 16 tasks each returning a fresh 20 MB array: wall time, forklift/joblib **<= 0.7**.

Each round makes a fresh array (not timed) so neither library profits from the last round;
both pools are warm before the first round. ``quick=True`` uses 40 MB and 2 MB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Scenario


def row_mean(data: Any, row: int) -> float:
    return float(data[row].mean())


def whole_sum(data: Any, row: int) -> float:
    return float(data.sum()) + row


def fresh_block(value: float, n_values: int) -> Any:
    import numpy as np

    return np.full(n_values, value)


def _pss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _family_pss() -> int:
    """Summed PSS of this process and all its descendants (workers, fork servers)."""
    import os

    import psutil

    pids = [os.getpid(), *(child.pid for child in psutil.Process().children(recursive=True))]
    return sum(_pss_bytes(pid) for pid in pids)


class _PeakSampler:
    """Samples the family's PSS every 10 ms on a thread; ``peak`` is the largest seen."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _family_pss())
            self._stop.wait(0.01)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _family_pss())


def scenarios(quick: bool) -> list[Scenario]:
    import joblib
    import numpy as np

    import forklift

    array_bytes = (40 << 20) if quick else (400 << 20)
    result_bytes = (2 << 20) if quick else (20 << 20)
    rows = 1000
    n_tasks = 16
    repeats = 2 if quick else 5

    libraries: dict[str, tuple[Any, Any]] = {
        "forklift": (forklift.Parallel, forklift.delayed),
        "joblib": (joblib.Parallel, joblib.delayed),
    }
    for parallel, delayed in libraries.values():  # warm both pools
        parallel(n_jobs=2)(delayed(abs)(-i) for i in range(4))

    def make_array() -> Any:
        data = np.empty((rows, array_bytes // 8 // rows))
        data[:] = 1.5  # touch every page, as real data would
        return data

    def shared_array_call(library: str) -> Callable[[], float]:
        parallel, delayed = libraries[library]

        def run() -> float:
            data = make_array()
            started = time.perf_counter()
            parallel(n_jobs=2)(delayed(row_mean)(data, row) for row in range(n_tasks))
            return time.perf_counter() - started

        return run

    def shared_array_memory(library: str) -> Callable[[], float]:
        parallel, delayed = libraries[library]

        def run() -> float:
            before = _family_pss()
            data = make_array()
            with _PeakSampler() as sampler:
                parallel(n_jobs=2)(delayed(whole_sum)(data, row) for row in range(n_tasks))
            multiple = (sampler.peak - before) / data.nbytes
            del data
            return multiple

        return run

    def fresh_results(library: str) -> Callable[[], float]:
        parallel, delayed = libraries[library]

        def run() -> float:
            started = time.perf_counter()
            blocks = parallel(n_jobs=2)(
                delayed(fresh_block)(float(i), result_bytes // 8) for i in range(n_tasks)
            )
            seconds = time.perf_counter() - started
            if len(blocks) != n_tasks or blocks[-1][0] != n_tasks - 1:
                raise AssertionError(f"{library} returned wrong blocks")
            return seconds

        return run

    size = f"{array_bytes >> 20} MB"
    return [
        Scenario(
            name=f"{n_tasks} tasks given the same {size} array",
            runners={name: shared_array_call(name) for name in libraries},
            target=0.5,
            repeats=repeats,
            note=(
                "forklift writes the array once per call as 2 stripe files, by 2 threads (one "
                "tmpfs file's writes are serialised by its inode lock), and re-maps the "
                "caller's copy onto them; ~95% of its time is the kernel filling /dev/shm: "
                "0.20 s of CPU per 400 MB in all, 0.10 s per writer (measured here). On 2 idle "
                "cores the writers run side by side (~0.1 s); on a busy machine they take "
                "turns and the row shows one writer's time, the ratio rising towards 0.9. "
                "joblib's caller spends ~0.24 s of CPU (one thread)"
            ),
        ),
        Scenario(
            name=f"{n_tasks} tasks each summing the whole {size} array: peak PSS / array size",
            runners={name: shared_array_memory(name) for name in libraries},
            target=1.1,
            target_of="subject",
            unit="x",
            repeats=repeats,
            note=(
                "PSS counts a file's pages only where they are mapped: the caller's copy and "
                "the files coexist while a stripe is written (~0.1 s), unseen here, until each "
                "stripe is re-mapped over the caller's own pages; joblib keeps both copies"
            ),
        ),
        Scenario(
            name=f"{n_tasks} tasks each returning a fresh {result_bytes >> 20} MB array",
            runners={name: fresh_results(name) for name in libraries},
            target=0.7,
            repeats=repeats,
            note="forklift's workers put large results in a memfd the caller maps: one copy",
        ),
    ]
