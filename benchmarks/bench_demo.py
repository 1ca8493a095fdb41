"""The parallel step of ``forklift demo``, on 2 workers, against the demo's plain loop.

Issue 16's target: on 2 idle cores the demo's own parallel step shows a speed-up of at
least 1.7, so its time is **<= 0.59** of the plain loop's (the ratio column here is
forklift's time over the plain loop's; joblib's time for the same step is shown beside it).

Both pools are warm before the first round, as in the demo, which starts its workers before
it times the step. The documents are the demo's own (``forklift.cli.demo``): equal pure-Python
CPU work per task. ``quick=True`` uses 8 shorter documents.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import Scenario, time_call


def scenarios(quick: bool) -> list[Scenario]:
    import joblib

    import forklift
    from forklift.cli.demo import extract_features, write_corpus

    n_files, words = (8, 20_000) if quick else (32, 100_000)
    folder = tempfile.mkdtemp(prefix="forklift-bench-demo-")
    atexit.register(shutil.rmtree, folder, True)
    paths = [str(path) for path in write_corpus(Path(folder), n_files, words_per_file=words)]

    libraries: dict[str, tuple[Any, Any]] = {
        "forklift": (forklift.Parallel, forklift.delayed),
        "joblib": (joblib.Parallel, joblib.delayed),
    }
    for parallel, delayed in libraries.values():  # warm both pools, as the demo does
        parallel(n_jobs=2)(delayed(abs)(-i) for i in range(4))

    def parallel_step(library: str) -> Callable[[], float]:
        parallel, delayed = libraries[library]
        return lambda: time_call(
            lambda: parallel(n_jobs=2)(delayed(extract_features)(path) for path in paths)
        )

    def plain_loop() -> float:
        return time_call(lambda: [extract_features(path) for path in paths])

    return [
        Scenario(
            name=f"forklift demo's parallel step, {n_files} documents on 2 workers",
            runners={
                "forklift": parallel_step("forklift"),
                "joblib": parallel_step("joblib"),
                "plain loop": plain_loop,
            },
            baseline="plain loop",
            target=0.59,
            repeats=3 if quick else 5,
            note=(
                "ratio = forklift's time / the plain loop's (0.59 is a 1.7x speed-up). The "
                "step's tasks are ~60 ms of CPU each. On a busy machine with autogroup "
                "scheduling both workers share one session's CPU share, as the plain loop has "
                "one alone (measured here at load 8: workers 10-13% of their time computing, "
                "the loop 28-33%), so the speed-up falls to ~1 or below: see the load average "
                "under the table. Workers' CPU times put the idle figure at 1.7-1.9x"
            ),
        )
    ]
