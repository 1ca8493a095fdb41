"""``verbose`` lines: the shapes joblib users know, drawn from the event machinery."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from forklift.parallel.api import Parallel, delayed
from forklift.progress.events import BatchCompleted, RunFinished, RunStarted
from forklift.progress.verbose import VerboseReporter, format_duration


def square(x: int) -> int:
    return x * x


def _shape(line: str) -> str:
    """A line with its numbers blanked: what must match joblib, whatever the timings."""
    return re.sub(r" *\d+(\.\d+)?", " N", line)


def _lines(
    module: Any, capsys: pytest.CaptureFixture[str], sized: bool, **kwargs: Any
) -> list[str]:
    n = kwargs.pop("n")
    tasks = (module.delayed(square)(i) for i in range(n))
    module.Parallel(**kwargs)(list(tasks) if sized else tasks)
    return capsys.readouterr().err.splitlines()


CASES = [
    pytest.param(True, {"n": 100, "n_jobs": 2, "backend": "threading", "verbose": 5}, id="list"),
    pytest.param(
        False, {"n": 300, "n_jobs": 2, "backend": "threading", "verbose": 5}, id="generator"
    ),
    pytest.param(True, {"n": 30, "n_jobs": 2, "backend": "threading", "verbose": 10}, id="v10"),
    pytest.param(False, {"n": 5, "n_jobs": 1, "verbose": 10}, id="n_jobs=1"),
]


@pytest.mark.parametrize(("sized", "kwargs"), CASES)
def test_lines_have_joblibs_shapes(
    sized: bool, kwargs: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    joblib = pytest.importorskip("joblib")
    import forklift.parallel.api as forklift_api

    theirs = _lines(joblib, capsys, sized, **dict(kwargs, batch_size=1))
    ours = _lines(forklift_api, capsys, sized, **dict(kwargs, batch_size=1))
    # The first and the last lines are the same, timings aside; in between, the same kinds
    # of lines (how many depends on timing and batching in both libraries).
    untimed = re.compile(r"\d+\.\ds")
    assert untimed.sub("T", ours[0]) == untimed.sub("T", theirs[0])
    assert untimed.sub("T", ours[-1]) == untimed.sub("T", theirs[-1])
    assert {_shape(line) for line in ours} == {_shape(line) for line in theirs}
    # Columns line up: everything before " | elapsed" has one width.
    assert len({len(line.split("|")[0]) for line in ours if "Done" in line}) == 1


def test_an_error_prints_no_finished_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(TypeError):
        Parallel(n_jobs=2, backend="threading", verbose=10)(delayed(square)(x) for x in [1, "a", 3])
    assert "finished" not in capsys.readouterr().err


def test_exhausted_unsized_input_gets_remaining_estimates() -> None:
    stream = io.StringIO()
    reporter = VerboseReporter(5, stream)
    reporter.handle(RunStarted("ThreadingBackend", 2, 2, backend_name="threading"))
    for done in range(10, 101, 10):
        reporter.handle(BatchCompleted(10, done, 100, 100, done / 100, "1:w", 0.0, 0.1))
    reporter.handle(RunFinished(100, 100, 1.0, error=False))
    lines = stream.getvalue().splitlines()
    assert (
        lines[1]
        == "[Parallel(n_jobs=2)]: Done  20 out of 100 | elapsed:    0.2s remaining:    0.8s"
    )
    assert len(lines) == 2 + 4 and lines[-1].endswith("elapsed:    1.0s finished")


def test_format_duration_matches_joblibs_widths() -> None:
    assert format_duration(0.04) == "   0.0s"
    assert format_duration(12.34) == "  12.3s"
    assert format_duration(150) == " 2.5min"
