"""Built-in reporters never raise, whatever order (or subset) of events they are given."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from forklift.progress import (
    BatchCompleted,
    BatchDispatched,
    BatchFailed,
    Event,
    Heartbeat,
    ProgressReporter,
    RunFinished,
    RunStarted,
    TraceRecorder,
    VerboseReporter,
)
from forklift.progress.bar import LineBar

EVENTS: list[Event] = [
    RunStarted(
        "ThreadingBackend", 2, 2, expected_total=10, started=100.0, backend_name="threading"
    ),
    RunStarted("SequentialBackend", 1, None, started=100.0, backend_name="sequential"),
    BatchDispatched(0, 0, 5, 5, None, 100.1, 0.1),
    BatchDispatched(1, 5, 5, 10, 10, 100.1, 0.1),
    BatchCompleted(5, 5, 10, 10, 0.5, "1:a", 100.2, 100.5, 0, 0),
    BatchCompleted(5, 10, 10, 10, 0.9, "1:b", 100.2, 100.9, 1, 5, (100.3,) * 5, ("f",) * 5),
    BatchFailed(1, 5, 5, 7, "f", "ValueError", "boom", 5, 0.8, "1:b", 100.2, 100.8, (100.3,) * 3),
    BatchFailed(2, 10, 1, 10, "f", "KeyError", "", 10, 0.8, "2:c", 100.2, 100.2, None),
    Heartbeat(0, 5, None, 1.0),
    RunFinished(10, 10, 1.0, error=False, finished=101.0),
    RunFinished(5, None, 1.0, error=True, reason="closed early", finished=101.0),
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(EVENTS), max_size=25))
def test_builtin_reporters_take_any_event_sequence(sequence: list[Event]) -> None:
    stream = io.StringIO()
    with tempfile.TemporaryDirectory() as folder:
        reporters = [
            VerboseReporter(11, stream),
            VerboseReporter(3, stream),
            ProgressReporter(LineBar(stream, interval=0)),
            ProgressReporter(stream=stream),
            TraceRecorder(Path(folder) / "t.html"),
            TraceRecorder(Path(folder) / "t.json"),
        ]
        for event in sequence:
            for reporter in reporters:
                reporter.handle(event)
