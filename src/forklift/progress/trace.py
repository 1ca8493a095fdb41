"""Timelines of a run: ``Parallel(trace="run.html")`` or ``trace="run.json"``.

:class:`TraceRecorder` is a reporter that asks for per-task timings and collects, for every
task that ran, its worker, batch, start, end and outcome. When the run ends it writes:

* ``.json`` - Chrome trace-event JSON (open it in https://ui.perfetto.dev or
  ``chrome://tracing``): one track per worker, a slice per batch with its tasks nested inside,
  failures marked;
* ``.html`` - a self-contained page (inline SVG and CSS, a few lines of inline JS, nothing
  fetched from the network) with a per-worker timeline where idle gaps show as empty track,
  batch sizes, per-worker busy/idle totals and failures; the same trace-event JSON is embedded
  and can be saved from the page.

Each call of a ``Parallel`` writes the file when it ends (a later call overwrites it), also
when the run failed - that is when a timeline is most wanted. The file is written atomically.

Imports only the standard library, :mod:`forklift.errors` and this room.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from forklift.errors import ConfigurationError
from forklift.progress.events import (
    BatchCompleted,
    BatchDispatched,
    BatchFailed,
    Event,
    RunFinished,
    RunStarted,
)

__all__ = ["Span", "Timeline", "TraceRecorder", "chrome_trace", "check_trace_path"]

log = logging.getLogger("forklift.progress")

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


class TraceRecorder:
    """Collects a run's task spans and writes them to ``path`` when the run ends."""

    needs_task_times = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = check_trace_path(path)
        self.timeline = Timeline()

    def handle(self, event: Event) -> None:
        if isinstance(event, BatchCompleted | BatchFailed):
            self._record(event)
        elif isinstance(event, BatchDispatched):
            self.timeline.dispatched[event.batch_index] = event.dispatched
        elif isinstance(event, RunStarted):
            self.timeline = Timeline(
                backend=event.backend_name or event.backend,
                n_workers=event.n_workers,
                started=event.started,
                total=event.expected_total,
            )
        elif isinstance(event, RunFinished):
            timeline = self.timeline
            timeline.finished = event.finished
            timeline.n_completed = event.n_completed
            if event.total is not None:
                timeline.total = event.total
            if event.error and not timeline.error:
                timeline.error = event.reason
            write_trace(timeline, self.path)

    def _record(self, event: BatchCompleted | BatchFailed) -> None:
        timeline = self.timeline
        timeline.batch_sizes[event.batch_index] = event.n_tasks
        failed_at = event.failed_task if isinstance(event, BatchFailed) else -1
        error = f"{event.error_type}: {event.error}" if isinstance(event, BatchFailed) else ""
        if error:
            timeline.error = error
        ends = event.task_ends
        names = event.task_names or ()
        if ends is None:
            # No per-task times (a backend that ignores the request): one span per batch.
            name = names[0] if names else "batch"
            timeline.spans.append(
                Span(
                    task=event.first_task,
                    batch=event.batch_index,
                    batch_size=event.n_tasks,
                    worker=event.worker,
                    start=event.started,
                    end=event.finished,
                    name=f"{name} x{event.n_tasks}",
                    error=error,
                )
            )
            return
        start = event.started
        for position, end in enumerate(ends):
            task = event.first_task + position
            timeline.spans.append(
                Span(
                    task=task,
                    batch=event.batch_index,
                    batch_size=event.n_tasks,
                    worker=event.worker,
                    start=start,
                    end=end,
                    name=names[position] if position < len(names) else "task",
                    error=error if task == failed_at else "",
                )
            )
            start = end


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


def write_trace(timeline: Timeline, path: str) -> None:
    """Write ``timeline`` to ``path`` atomically, as HTML or JSON per its suffix."""
    import json

    if Path(path).suffix.lower() == ".json":
        text = json.dumps(chrome_trace(timeline), indent=None, separators=(",", ":"))
    else:
        from forklift.progress.trace_html import render_html

        text = render_html(
            timeline, chrome_trace(timeline, len(timeline.spans) <= MAX_EMBEDDED_TASKS)
        )
    target = Path(path)
    # A private name next to the target, then a rename: readers never see half a file.
    # (Not mkstemp: its 0600 mode would stick to the trace; open(..., "x") honours umask.)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    log.info("wrote a trace of %d tasks to %s", len(timeline.spans), target)
