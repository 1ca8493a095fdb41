"""``forklift demo``: the text-feature pipeline of the tutorials, made parallel and cached.

It writes a folder of generated documents, then extracts word-frequency features from each:
once in a plain loop, once with ``Parallel(n_jobs=-1)``, then twice more with the extraction
cached by ``Memory`` - the first of those fills the cache, the second is served from it -
and checks every run gives the same features before printing the speed-ups.

The parallel step is made to show what the CPUs give, and the demo says when it could not:

* the work is pure-Python CPU work in equal parts: documents of the same length, each task
  ~60 ms of CPU (measured on the 2-CPU build machine): over the process backend's 50 ms
  batch target, so each is sent alone, one per worker, and no worker waits at the end for
  another's batch;
* the workers are started before the parallel step is timed, and their start-up is printed
  on its own line: it is paid once per program, not once per call (the demo before had it
  inside the step, with 48 tasks of ~25 ms, and showed "speed-up 1.3x" on 2 idle cores).
  Start-up includes each worker's import of this module (its first task unpickles a
  function of it): ~0.1 s of CPU per worker, as it imports Memory. Left in the first task,
  it made the first parallel call 0.05-0.08 s slower than the same call once warm (0.93-0.99
  against 0.88-0.91 s). Ten interleaved runs of the demo each way (load 0.8-1.0, noisy):
  the workers computed 94-97% of the step's time, against 89-93% before; median speed-up
  1.76x against 1.71x;
* the demo prints how many CPUs it had, the load average before it started, and how much of
  their time the plain loop and the workers really computed (CPU time over wall time): a
  speed-up measured on a busy machine says so.

Measured on the busy build machine, the workers' CPU times (the busier worker's sum, plus
half the caller's) put the parallel step at 1.7-1.9x the plain loop's speed on 2 idle cores.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

from forklift._support.cpus import cpu_count, workers_for_n_jobs
from forklift.cache.memory import Memory
from forklift.parallel.api import Parallel, delayed

__all__ = ["extract_features", "run_demo", "write_corpus"]

_WORDS = [
    "python",
    "data",
    "parallel",
    "cache",
    "model",
    "array",
    "feature",
    "process",
    "thread",
    "worker",
    "memory",
    "disk",
    "pipeline",
    "science",
    "learning",
    "vector",
    "matrix",
    "cluster",
    "result",
    "function",
    "compute",
    "fast",
]
_WORD = re.compile(r"\b[a-z]{3,}\b")


def write_corpus(folder: Path, n_files: int, words_per_file: int = 100_000) -> list[Path]:
    """Write ``n_files`` reproducible text documents of the same length into ``folder``."""
    paths = []
    for index in range(n_files):
        text = " ".join(random.Random(index).choices(_WORDS, k=words_per_file))
        path = folder / f"doc_{index:04d}.txt"
        path.write_text(text)
        paths.append(path)
    return paths


def extract_features(path: str) -> dict[str, Any]:
    """Word count, top words and bigram statistics of one document (pure-Python CPU work)."""
    words = _WORD.findall(Path(path).read_text().lower())
    counts = Counter(words)
    bigrams = Counter(itertools.pairwise(words))
    lengths = sorted(len(word) for word in words)
    return {
        "file": Path(path).name,
        "word_count": len(words),
        "top_words": [word for word, _ in counts.most_common(3)],
        "top_bigram": " ".join(bigrams.most_common(1)[0][0]) if bigrams else "",
        "median_length": lengths[len(lengths) // 2] if lengths else 0,
    }


def _extract_timed(path: str) -> tuple[dict[str, Any], float]:
    """The features, and the CPU seconds the worker spent computing them."""
    start = time.thread_time()
    features = extract_features(path)
    return features, time.thread_time() - start


def _ready() -> int:
    """A task of the start-up step: it brings this module into the worker (unpickling it
    imports the module, and with it Memory: ~0.1 s on the build machine, paid once per
    worker), and lasts long enough that every worker gets one."""
    time.sleep(0.02)
    return os.getpid()


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return None


def run_demo(n_files: int = 32, n_jobs: int = -1, backend: str | None = None) -> int:
    load_before = _load_average()  # before the demo adds its own
    cpus = cpu_count()
    workers = workers_for_n_jobs(n_jobs)
    with tempfile.TemporaryDirectory(prefix="forklift-demo-") as folder:
        paths = [str(path) for path in write_corpus(Path(folder), n_files)]
        print(
            f"forklift demo: extracting features from {len(paths)} generated documents "
            f"({cpus} CPUs)"
        )

        start, cpu_start = time.perf_counter(), time.process_time()
        sequential = [extract_features(path) for path in paths]
        sequential_seconds = time.perf_counter() - start
        loop_share = (time.process_time() - cpu_start) / sequential_seconds
        _step("plain loop", sequential_seconds)

        start = time.perf_counter()
        Parallel(n_jobs=n_jobs, backend=backend, batch_size=1)(
            delayed(_ready)() for _ in range(2 * workers)
        )
        _step(
            f"starting {_workers(workers)}",
            time.perf_counter() - start,
            "once per program: later calls reuse them",
        )

        start = time.perf_counter()
        timed = Parallel(n_jobs=n_jobs, backend=backend)(
            delayed(_extract_timed)(path) for path in paths
        )
        parallel_seconds = time.perf_counter() - start
        parallel = [features for features, _ in timed]
        workers_share = sum(seconds for _, seconds in timed) / (
            min(workers, cpus) * parallel_seconds
        )
        _step(f"Parallel(n_jobs={n_jobs})", parallel_seconds, _workers(workers))

        if parallel != sequential:
            print("  ERROR: parallel results differ from the plain loop's")
            return 1
        print(
            f"  same {len(parallel)} results; speed-up "
            f"{sequential_seconds / parallel_seconds:.2f}x with {_workers(workers)} on {cpus} CPUs"
        )

        memory = Memory(Path(folder) / "cache", verbose=0)
        cached_extract = memory.cache(extract_features)
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            cached = Parallel(n_jobs=n_jobs, backend=backend)(
                delayed(cached_extract)(path) for path in paths
            )
            timings.append(time.perf_counter() - start)
            if cached != sequential:
                print("  ERROR: cached results differ from the plain loop's")
                return 1
        hits = sum(cached_extract.check_call_in_cache(path) for path in paths)
        _step("Parallel + Memory, cold", timings[0], "computed and cached")
        _step(
            "Parallel + Memory, warm",
            timings[1],
            f"served from cache: {hits} of {len(paths)} results; "
            f"{sequential_seconds / timings[1]:.0f}x the plain loop's speed",
        )
        top = parallel[0]
        print(f"  e.g. {top['file']}: {top['word_count']:,} words, top {top['top_words']}")
    print(_machine_verdict(load_before, cpus, loop_share, workers_share))
    return 0


def _step(label: str, seconds: float, note: str = "") -> None:
    print(f"  {label + ':':<26}{seconds:6.2f} s" + (f"  ({note})" if note else ""))


def _workers(count: int) -> str:
    return f"{count} worker" + ("" if count == 1 else "s")


def _machine_verdict(
    load_before: float | None, cpus: int, loop_share: float, workers_share: float
) -> str:
    """Whether other programs had the CPUs, from what was measured (a few indented lines)."""
    load = "unknown" if load_before is None else f"{load_before:.2f}"
    computed = (
        f"the plain loop computed {min(loop_share, 1):.0%} of its time, "
        f"the workers {min(workers_share, 1):.0%} of theirs"
    )
    busy = (load_before is not None and load_before >= 0.5) or loop_share < 0.9
    if busy:
        text = (
            f"the machine was busy: load average {load} on {cpus} CPUs before the demo; "
            f"{computed}: other programs had the CPUs part of the time, so the speed-up "
            "above is less than idle CPUs give"
        )
    else:
        text = (
            f"the machine was idle (load average {load} on {cpus} CPUs before the demo); {computed}"
        )
    return textwrap.fill(text, width=92, initial_indent="  ", subsequent_indent="    ")
