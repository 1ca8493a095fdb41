"""The trace reporter: collects a run's timeline and writes it when the run ends.

:class:`TraceRecorder` asks the engine for per-task timings and collects, for every task that
ran, its worker, batch, start, end and outcome (:class:`~forklift.progress.trace.Span`). When
the run ends - also when it failed - it writes the timeline as JSON (:mod:`.trace`) or as the
page (:mod:`.trace_html`), per the path's suffix, atomically
(:func:`forklift._support.atomic.atomic_write`: readers never see half a file; no fsync, a
trace is not worth a disk flush).

Imports only the standard library, :mod:`forklift.errors`, :mod:`forklift._support` and this
room.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from forklift._support.atomic import atomic_write
from forklift.progress import trace
from forklift.progress.events import (
    BatchCompleted,
    BatchDispatched,
    BatchFailed,
    Event,
    RunFinished,
    RunStarted,
)
from forklift.progress.trace import Span, Timeline, check_trace_path, chrome_trace
from forklift.progress.trace_html import render_html

__all__ = ["TraceRecorder", "write_trace"]

log = logging.getLogger("forklift.progress")


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
            # No per-task times (a backend that ignores the request): one span for the batch,
            # which carries the batch's error if it failed.
            ends = (event.finished,)
            names = (f"{names[0] if names else 'batch'} x{event.n_tasks}",)
            failed_at = event.first_task if error else -1
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


def write_trace(timeline: Timeline, path: str) -> None:
    """Write ``timeline`` to ``path`` atomically, as HTML or JSON per its suffix."""
    if Path(path).suffix.lower() == ".json":
        text = json.dumps(chrome_trace(timeline), indent=None, separators=(",", ":"))
    else:
        embedded = chrome_trace(timeline, len(timeline.spans) <= trace.MAX_EMBEDDED_TASKS)
        text = render_html(timeline, embedded)
    with atomic_write(path, fsync=False) as stream:
        stream.write(text.encode("utf-8"))
    log.info("wrote a trace of %d tasks to %s", len(timeline.spans), path)
