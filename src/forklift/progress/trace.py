"""Timelines of a run, as data: :class:`Timeline` (its :class:`Span` s) and its Chrome
trace-event JSON. ``Parallel(trace="run.html")`` or ``trace="run.json"`` records one (with
:class:`~forklift.progress.recorder.TraceRecorder`) and writes, when the run ends:

* ``.json`` - Chrome trace-event JSON (open it in https://ui.perfetto.dev or
  ``chrome://tracing``): one track per worker, a slice per batch with its tasks nested inside,
  failures marked;
* ``.html`` - a self-contained page (inline SVG and CSS, a few lines of inline JS, nothing
  fetched from the network) with a per-worker timeline where idle gaps show as empty track,
  batch sizes, per-worker busy/idle totals and failures; the same trace-event JSON is embedded
  and can be saved from the page.

Each call of a ``Parallel`` writes the file when it ends (a later call overwrites it), also
when the run failed - that is when a timeline is most wanted. The file is written atomically.

The rooms of a trace, imported one way: this module (the data) <- :mod:`.trace_html` (the
page) <- :mod:`.recorder` (the reporter, which writes either). Before, the recorder lived
here and imported the page, which imports the data from here: a circle, closed by a
function-level import.

Imports only the standard library, :mod:`forklift.errors` and this room.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from forklift.errors import ConfigurationError

__all__ = ["MAX_EMBEDDED_TASKS", "Span", "Timeline", "chrome_trace", "check_trace_path"]

TRACE_SUFFIXES = (".html", ".htm", ".json")
# Beyond this many tasks the page embeds only batches and failures in its trace JSON, so that
# it stays a page a browser opens quickly (write a .json trace for every task).
MAX_EMBEDDED_TASKS = 50_000


def check_trace_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a string if its suffix names a trace format (.html, .htm, .json); raises
    :class:`~forklift.errors.ConfigurationError` otherwise."""
    text = os.fspath(path)
    if not isinstance(text, str) or Path(text).suffix.lower() not in TRACE_SUFFIXES:
        raise ConfigurationError(
            f"trace must be a path ending in .html (timeline page) or .json (Chrome trace "
            f"events, for Perfetto); got {path!r}"
        )
    return text


@dataclasses.dataclass(frozen=True, slots=True)  # slots: a big run records many
class Span:
    """One task that ran: where, when, in which batch, and whether it raised."""

    task: int
    batch: int
    batch_size: int
    worker: str
    start: float
    end: float
    name: str
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error)


@dataclasses.dataclass
class Timeline:
    """A run as recorded: its spans plus what the run said about itself."""

    backend: str = ""
    n_workers: int = 0
    started: float = 0.0
    finished: float = 0.0
    spans: list[Span] = dataclasses.field(default_factory=list)
    batch_sizes: dict[int, int] = dataclasses.field(default_factory=dict)
    # When each batch was handed to the backend (caller's clock): its wait in the queue is
    # the gap to its first task's start.
    dispatched: dict[int, float] = dataclasses.field(default_factory=dict)
    n_completed: int = 0
    total: int | None = None
    error: str = ""

    def workers(self) -> list[str]:
        """Worker ids in the order they first started work."""
        first: dict[str, float] = {}
        for span in self.spans:
            if span.worker not in first or span.start < first[span.worker]:
                first[span.worker] = span.start
        return sorted(first, key=lambda worker: (first[worker], worker))


def _worker_ids(timeline: Timeline) -> dict[str, tuple[int, int]]:
    """(pid, tid) for each worker: its real pid, and a small thread number within it."""
    ids: dict[str, tuple[int, int]] = {}
    per_pid: dict[int, int] = {}
    for worker in timeline.workers():
        head = worker.split(":", 1)[0]
        pid = int(head) if head.isdigit() else 0
        per_pid[pid] = per_pid.get(pid, 0) + 1
        ids[worker] = (pid, per_pid[pid])
    return ids


def chrome_trace(timeline: Timeline, include_tasks: bool = True) -> dict[str, Any]:
    """The timeline as Chrome trace-event JSON (a dict ready for ``json.dump``).

    Without ``include_tasks`` only batches and failed tasks are listed (for a page that must
    stay small); the ``.json`` file always has every task.
    """
    origin = timeline.started or min((span.start for span in timeline.spans), default=0.0)

    def micros(moment: float) -> float:
        return round((moment - origin) * 1e6, 3)

    ids = _worker_ids(timeline)
    events: list[dict[str, Any]] = []
    for pid in sorted({pid for pid, _ in ids.values()}):
        events.append(
            {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": f"process {pid}"}}
        )
    for worker, (pid, tid) in ids.items():
        events.append(
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": worker}}
        )
        events.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": pid,
                "tid": tid,
                "args": {"sort_index": tid},
            }
        )
    batches: dict[int, list[Span]] = {}
    for span in timeline.spans:
        batches.setdefault(span.batch, []).append(span)
    for batch, spans in sorted(batches.items()):
        pid, tid = ids[spans[0].worker]
        start, end = spans[0].start, spans[-1].end
        batch_args: dict[str, Any] = {"batch": batch, "batch_size": spans[0].batch_size}
        if batch in timeline.dispatched:
            batch_args["queued_ms"] = round(max(0.0, start - timeline.dispatched[batch]) * 1e3, 3)
        events.append(
            {
                "name": f"batch {batch} ({spans[0].batch_size} tasks)",
                "cat": "batch",
                "ph": "X",
                "ts": micros(start),
                "dur": round(max(0.0, end - start) * 1e6, 3),
                "pid": pid,
                "tid": tid,
                "args": batch_args,
            }
        )
    for span in timeline.spans:
        error = span.error
        if error:
            args: dict[str, Any] = {"task": span.task, "batch": span.batch, "error": error}
        elif include_tasks:
            args = {"task": span.task, "batch": span.batch}
        else:
            continue
        pid, tid = ids[span.worker]
        events.append(
            {
                "name": span.name,
                "cat": "task,failed" if error else "task",
                "ph": "X",
                "ts": round((span.start - origin) * 1e6, 3),
                "dur": round(max(0.0, span.end - span.start) * 1e6, 3),
                "pid": pid,
                "tid": tid,
                "args": args,
            }
        )
        if error:
            events.append(
                {
                    "name": f"failed: {error.split(':', 1)[0]}",
                    "cat": "failure",
                    "ph": "i",
                    "s": "t",
                    "ts": micros(span.end),
                    "pid": pid,
                    "tid": tid,
                    "args": {"task": span.task, "error": error},
                }
            )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "forklift",
            "backend": timeline.backend,
            "n_workers": timeline.n_workers,
            "n_tasks_completed": timeline.n_completed,
            "total": timeline.total,
            "wall_seconds": max(0.0, timeline.finished - timeline.started),
            "error": timeline.error,
        },
    }
