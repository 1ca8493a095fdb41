"""What watching a run costs: tiny tasks with a progress bar, with a trace, and without."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from benchmarks.harness import Scenario, time_call


def tiny(x: int) -> int:
    return x


def scenarios(quick: bool) -> list[Scenario]:
    import joblib
    from tqdm import tqdm

    import forklift

    n = 2_000 if quick else 20_000
    repeats = 2 if quick else 5

    def plain() -> float:
        return time_call(
            lambda: forklift.Parallel(n_jobs=2, backend="threading")(
                forklift.delayed(tiny)(i) for i in range(n)
            )
        )

    def with_bar() -> float:
        bar = tqdm(file=io.StringIO(), mininterval=0.1)
        return time_call(
            lambda: forklift.Parallel(n_jobs=2, backend="threading", progress=bar)(
                forklift.delayed(tiny)(i) for i in range(n)
            )
        )

    def with_trace() -> float:
        with tempfile.TemporaryDirectory(prefix="forklift-bench-trace-") as folder:
            return time_call(
                lambda: forklift.Parallel(
                    n_jobs=2, backend="threading", trace=Path(folder) / "run.json"
                )(forklift.delayed(tiny)(i) for i in range(n))
            )

    def joblib_plain() -> float:
        return time_call(
            lambda: joblib.Parallel(n_jobs=2, backend="threading")(
                joblib.delayed(tiny)(i) for i in range(n)
            )
        )

    return [
        # The ratio is the bar's own cost: forklift with a bar over forklift without one.
        Scenario(
            name=f"{n:,} tiny tasks, threading, tqdm progress bar",
            runners={"with bar": with_bar, "no bar": plain, "joblib, no bar": joblib_plain},
            subject="with bar",
            baseline="no bar",
            target=1.2,
            repeats=repeats,
            note="ratio: forklift with a bar / forklift without",
        ),
        Scenario(
            name=f"{n:,} tiny tasks, threading, trace to JSON",
            runners={"with trace": with_trace, "no trace": plain, "joblib, no trace": joblib_plain},
            subject="with trace",
            baseline="no trace",
            target=None,
            repeats=repeats,
            note="ratio: forklift writing a trace of every task / forklift without",
        ),
    ]
