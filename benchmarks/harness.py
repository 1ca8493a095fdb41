"""The benchmark harness: run variants of a scenario alternately, report medians and ratios.

A scenario lists runners - one per library - each of which runs the workload once and
returns the seconds that count (setup excluded). Runners are interleaved round by round
(each round in another, seeded order) so that a noisy neighbour, a thermal change or the
clean-up after the previous runner hits every variant alike; medians are reported, and the
ratio subject/baseline is compared with the target.

The table has one row per scenario: the subject's median (forklift), the baseline's
(joblib), their ratio, the goal and whether it is met; other variants (e.g. the stdlib, or
the array's own size for a memory row) go in a last column. A cell names its variant when
it is not forklift or joblib (``dask 1.2 ms``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Result", "Scenario", "machine_description", "run_scenario", "time_call"]


@dataclasses.dataclass
class Scenario:
    """One row of the table.

    ``runners`` map a variant name to a function that runs the workload once and returns the
    seconds measured. ``target`` is the goal for median(subject) / median(baseline) (lower is
    better), or with ``target_of="subject"`` for median(subject) itself (a memory multiple,
    say); None when there is no goal. ``note`` explains a figure in the table.
    """

    name: str
    runners: dict[str, Callable[[], float]]
    subject: str = "forklift"
    baseline: str = "joblib"
    target: float | None = None
    repeats: int = 5
    warmup: int = 1
    note: str = ""
    unit: str = "s"  # what runners return: "s" (seconds) or "x" (a multiple, e.g. of a size)
    target_of: str = "ratio"  # or "subject"
    # Stops what the runners started (a cluster, a server) once the rows are measured, so
    # it does not run beside the rows of other modules (an idle dask cluster and ray
    # instance wake up for heartbeats; measured here, they cost a 20k tiny-task call no
    # measurable time, but a benchmark should not have to show that for every row).
    teardown: Callable[[], None] | None = None


@dataclasses.dataclass
class Result:
    scenario: str
    medians: dict[str, float]
    ratio: float | None
    target: float | None
    note: str
    unit: str = "s"
    subject: str = "forklift"
    baseline: str = "joblib"
    rounds: int = 0
    target_of: str = "ratio"

    @property
    def judged(self) -> float | None:
        """The figure the goal is about: the ratio, or the subject's own median."""
        if self.target_of == "subject":
            return self.medians.get(self.subject)
        return self.ratio

    @property
    def met(self) -> bool | None:
        judged = self.judged
        if judged is None or self.target is None:
            return None
        return judged <= self.target


def time_call(function: Callable[[], Any]) -> float:
    """Seconds taken by ``function()`` - for runners with nothing to exclude."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def run_scenario(scenario: Scenario, rounds: int | None = None) -> Result:
    """Run ``scenario`` for its ``repeats`` rounds (or ``rounds``) after its warm-up ones."""
    samples: dict[str, list[float]] = {name: [] for name in scenario.runners}
    repeats = scenario.repeats if rounds is None else rounds
    try:
        _run_rounds(scenario, repeats, samples)
    finally:
        if scenario.teardown is not None:
            scenario.teardown()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratio = None
    if scenario.subject in medians and scenario.baseline in medians:
        ratio = medians[scenario.subject] / medians[scenario.baseline]
    return Result(
        scenario.name,
        medians,
        ratio,
        scenario.target,
        scenario.note,
        scenario.unit,
        scenario.subject,
        scenario.baseline,
        repeats,
        scenario.target_of,
    )


def machine_description() -> str:
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def load_note(before: float | None, after: float | None) -> str:
    """A line saying how busy the machine was, from the load averages around the run."""
    if before is None or after is None:
        return "Load average unknown: whether other programs ran meanwhile cannot be told."
    cpus = os.cpu_count() or 1
    verdict = (
        "a busy machine: wall times are noisy and parallel rows understated"
        if max(before, after) >= 0.5 * cpus
        else "a quiet machine"
    )
    return f"Load average {before:.1f} before the run, {after:.1f} after, {cpus} CPUs: {verdict}."


def format_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


TABLE_HEADER = "| scenario | forklift | joblib | ratio | goal | met | other variants |"


def _cell(result: Result, name: str, usual: str) -> str:
    value = result.medians.get(name)
    if value is None:
        return "-"
    shown = format_seconds(value) if result.unit == "s" else f"{value:.2f}x"
    return shown if name == usual else f"{name} {shown}"


def format_table(results: list[Result]) -> str:
    lines = [TABLE_HEADER, "| --- | --- | --- | --- | --- | --- | --- |"]
    for result in results:
        others = ", ".join(
            _cell(result, name, "")
            for name in result.medians
            if name not in (result.subject, result.baseline)
        )
        ratio = "-" if result.ratio is None else f"{result.ratio:.3f}"
        target = "-" if result.target is None else f"≤ {result.target}"
        if result.target is not None and result.target_of == "subject":
            target += f"{'x' if result.unit == 'x' else ' s'} ({result.subject}'s own)"
        met = {None: "-", True: "yes", False: "NO"}[result.met]
        lines.append(
            f"| {result.scenario} | {_cell(result, result.subject, 'forklift')} | "
            f"{_cell(result, result.baseline, 'joblib')} | {ratio} | {target} | {met} | "
            f"{others or '-'} |"
        )
    rounds = sorted({result.rounds for result in results})
    lines += [
        "",
        f"Medians of {', '.join(map(str, rounds))} rounds; ratio = the forklift column / the "
        "joblib column (a cell names its variant when it is another).",
    ]
    notes = [f"- {r.scenario}: {r.note}" for r in results if r.note]
    if notes:
        lines += ["", "Notes (what a figure means, or why a target is missed):", *notes]
    return "\n".join(lines)


def save(results: list[Result], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine_description(),
        "results": [dataclasses.asdict(result) for result in results],
    }
    path.write_text(json.dumps(payload, indent=2))


def _run_rounds(scenario: Scenario, repeats: int, samples: dict[str, list[float]]) -> None:
    names = list(scenario.runners)
    for round_index in range(scenario.warmup + repeats):
        # Each round runs the variants in another order (seeded, so runs are comparable):
        # a variant pays for what the one before it left behind - after a 1 GB load of
        # 4 KiB pages is freed, the next 1 GB allocation waits 1-3 s for the kernel to
        # compact memory into huge pages (measured here) - so none may always follow the
        # same one. Rotating a fixed order would not do: it keeps who follows whom.
        order = random.Random(round_index).sample(names, len(names))
        for name in order:
            runner = scenario.runners[name]
            seconds = runner()
            if round_index >= scenario.warmup:
                samples[name].append(seconds)
