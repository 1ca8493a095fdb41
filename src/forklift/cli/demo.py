"""``forklift demo``: the text-feature pipeline of the tutorials, made parallel and cached.

It writes a folder of generated documents, then extracts word-frequency features from each:
once in a plain loop, once with ``Parallel(n_jobs=-1)``, then twice more with the extraction
cached by ``Memory`` - the first of those fills the cache, the second is served from it -
and checks every run gives the same features before printing the speed-ups.
"""

from __future__ import annotations

import itertools
import random
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from forklift._support.cpus import workers_for_n_jobs
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


def write_corpus(folder: Path, n_files: int, words_per_file: int = 40_000) -> list[Path]:
    """Write ``n_files`` reproducible text documents into ``folder``."""
    paths = []
    for index in range(n_files):
        rng = random.Random(index)
        text = " ".join(rng.choice(_WORDS) for _ in range(words_per_file))
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


def run_demo(n_files: int = 48, n_jobs: int = -1, backend: str | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="forklift-demo-") as folder:
        paths = [str(path) for path in write_corpus(Path(folder), n_files)]
        print(f"forklift demo: extracting features from {len(paths)} generated documents")

        start = time.perf_counter()
        sequential = [extract_features(path) for path in paths]
        sequential_seconds = time.perf_counter() - start
        print(f"  plain loop:              {sequential_seconds:6.2f} s")

        start = time.perf_counter()
        parallel = Parallel(n_jobs=n_jobs, backend=backend)(
            delayed(extract_features)(path) for path in paths
        )
        parallel_seconds = time.perf_counter() - start
        workers = workers_for_n_jobs(n_jobs)
        print(f"  Parallel(n_jobs={n_jobs}):      {parallel_seconds:6.2f} s  ({workers} workers)")

        if parallel != sequential:
            print("  ERROR: parallel results differ from the plain loop's")
            return 1
        print(
            f"  same {len(parallel)} results; speed-up {sequential_seconds / parallel_seconds:.1f}x"
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
        print(f"  Parallel + Memory, cold:  {timings[0]:6.2f} s  (computed and cached)")
        print(
            f"  Parallel + Memory, warm:  {timings[1]:6.2f} s  (served from cache: {hits} of "
            f"{len(paths)} results; {sequential_seconds / timings[1]:.0f}x the plain loop's speed)"
        )
        top = parallel[0]
        print(f"  e.g. {top['file']}: {top['word_count']:,} words, top {top['top_words']}")
    return 0
