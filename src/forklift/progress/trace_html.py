"""The timeline page: a :class:`~forklift.progress.trace.Timeline` as one self-contained HTML file.

Everything is drawn here, in Python, as inline SVG: the page needs no network and no script
to show the timeline (a few lines of inline JS only add a "save trace JSON" button). Each
worker gets a track; a batch is a coloured block labelled with its size, split into its tasks
when there are not too many to draw; idle time is the hatched track between blocks (hover it
for its length); a failed task is red with a cross. Tooltips are SVG ``<title>`` elements.

Elements carry classes and ``data-`` attributes (``worker-row``, ``task``, ``failed``,
``idle``...) so the page can be checked by machine as well as by eye.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from typing import Any

from forklift.progress import trace
from forklift.progress.trace import Span, Timeline

__all__ = ["render_html"]

# Beyond this many tasks only batches are drawn: the page stays small and fast to open.
MAX_DRAWN_TASKS = 5000
WIDTH = 1120
LABEL_WIDTH = 200
RIGHT_MARGIN = 24
AXIS_HEIGHT = 30
ROW_HEIGHT = 26
ROW_GAP = 8
BATCH_COLOURS = ("#4e79a7", "#59a14f")
FAILED_COLOUR = "#d62728"

_STYLE = """
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 20px 28px;
       color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 6px 0; }
h2 { font-size: 15px; margin: 22px 0 6px 0; }
.summary { margin: 4px 0; font-size: 14px; }
.error { margin: 8px 0; padding: 6px 10px; background: #fde8e8; border-left: 4px solid #d62728;
         font-size: 14px; white-space: pre-wrap; }
svg text { font-size: 11px; fill: #333; }
svg .worker-label { font-size: 12px; }
svg .batch-size { fill: #fff; font-size: 10px; font-weight: bold; }
svg .fail-mark { fill: #fff; font-size: 12px; font-weight: bold; }
svg .tick { stroke: #e3e3e3; }
svg .idle:hover { fill: #f7d9a8; }
svg .task:hover, svg .batch:hover { opacity: 0.8; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; }
td:first-child, th:first-child { text-align: left; }
.legend span { display: inline-block; margin-right: 16px; font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: middle;
          margin-right: 4px; border: 1px solid #999; }
.note { color: #666; font-size: 12px; }
button { margin-top: 14px; }
"""

_SCRIPT = """
document.getElementById("save-json").addEventListener("click", function () {
  var text = document.getElementById("trace-events").textContent;
  var link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], {type: "application/json"}));
  link.download = "forklift-trace.json";
  link.click();
});
"""


def _seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 0.1:
        return f"{value * 1e3:.0f} ms"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def _nice_step(span: float, target_ticks: int = 8) -> float:
    raw = span / target_ticks if span > 0 else 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_html(timeline: Timeline, trace_events: dict[str, Any]) -> str:
    """The page for ``timeline``, with ``trace_events`` (its Chrome JSON) embedded."""
    workers = timeline.workers()
    spans = timeline.spans
    start = timeline.started or min((span.start for span in spans), default=0.0)
    end = max([timeline.finished, *(span.end for span in spans)], default=start)
    wall = max(end - start, 1e-9)
    plot_width = WIDTH - LABEL_WIDTH - RIGHT_MARGIN

    def x(moment: float) -> float:
        return LABEL_WIDTH + (moment - start) / wall * plot_width

    by_worker: dict[str, list[Span]] = {worker: [] for worker in workers}
    for span in spans:
        by_worker[span.worker].append(span)
    draw_tasks = len(spans) <= MAX_DRAWN_TASKS
    height = AXIS_HEIGHT + len(workers) * (ROW_HEIGHT + ROW_GAP) + 10

    parts: list[str] = [
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f3f3f3"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#dadada" stroke-width="2"/></pattern></defs>',
    ]
    step = _nice_step(wall)
    tick = 0.0
    while tick <= wall + 1e-12:
        position = x(start + tick)
        parts.append(
            f'<line class="tick" x1="{position:.1f}" y1="{AXIS_HEIGHT - 6}" x2="{position:.1f}" '
            f'y2="{height - 6}"/><text x="{position:.1f}" y="{AXIS_HEIGHT - 10}" '
            f'text-anchor="middle">{_escape(_seconds(tick) if tick else "0")}</text>'
        )
        tick += step
    worker_stats: list[tuple[str, int, int, float, float]] = []
    for row, worker in enumerate(workers):
        top = AXIS_HEIGHT + row * (ROW_HEIGHT + ROW_GAP)
        row_spans = by_worker[worker]
        parts.append(
            f'<g class="worker-row" data-worker="{_escape(worker)}" data-tasks="{len(row_spans)}">'
        )
        parts.append(
            f'<text class="worker-label" x="{LABEL_WIDTH - 8}" y="{top + ROW_HEIGHT / 2 + 4}" '
            f'text-anchor="end">{_escape(_short_worker(worker))}</text>'
        )
        parts.append(
            f'<rect class="track" x="{LABEL_WIDTH}" y="{top}" width="{plot_width}" '
            f'height="{ROW_HEIGHT}" fill="url(#hatch)"/>'
        )
        batches = _batches(row_spans)
        busy = sum(batch[-1].end - batch[0].start for batch in batches)
        # Idle gaps: before the first batch, between batches, after the last one.
        cursor = start
        for batch in [*batches, None]:
            gap_end = end if batch is None else batch[0].start
            if x(gap_end) - x(cursor) >= 1:
                parts.append(
                    f'<rect class="idle" x="{x(cursor):.2f}" y="{top}" '
                    f'width="{x(gap_end) - x(cursor):.2f}" height="{ROW_HEIGHT}" '
                    f'fill="transparent" data-seconds="{gap_end - cursor:.6f}">'
                    f"<title>idle {_escape(_seconds(gap_end - cursor))}</title></rect>"
                )
            if batch is not None:
                cursor = max(cursor, batch[-1].end)
        for position, batch in enumerate(batches):
            # Neighbours on a track alternate colours, so batch boundaries stand out.
            colour = BATCH_COLOURS[position % 2]
            queued = timeline.dispatched.get(batch[0].batch)
            wait = None if queued is None else max(0.0, batch[0].start - queued)
            parts.extend(_draw_batch(batch, x, top, draw_tasks, colour, wait))
        parts.append("</g>")
        worker_stats.append((worker, len(row_spans), len(batches), busy, wall - busy))
    parts.append("</svg>")
    return _page(timeline, "".join(parts), worker_stats, wall, draw_tasks, trace_events)


def _short_worker(worker: str) -> str:
    pid, _, thread = worker.partition(":")
    thread = thread.replace("forklift-thread", "thread").replace("MainThread", "main")
    return f"pid {pid} · {thread}" if thread else worker


def _batches(spans: list[Span]) -> list[list[Span]]:
    groups: dict[int, list[Span]] = {}
    for span in spans:
        groups.setdefault(span.batch, []).append(span)
    return sorted(groups.values(), key=lambda group: group[0].start)


def _draw_batch(
    batch: list[Span],
    x: Callable[[float], float],
    top: float,
    draw_tasks: bool,
    colour: str,
    wait: float | None,
) -> list[str]:
    first = batch[0]
    left, right = x(first.start), x(batch[-1].end)
    width = max(right - left, 1.0)
    failed = any(span.failed for span in batch)
    parts = [
        f'<g class="batch-group" data-batch="{first.batch}" data-size="{first.batch_size}">',
        f'<rect class="batch{" failed-batch" if failed else ""}" x="{left:.2f}" y="{top}" '
        f'width="{width:.2f}" height="{ROW_HEIGHT}" fill="{colour}" stroke="#1f3b57" '
        f'stroke-width="0.6"><title>batch {first.batch}: {first.batch_size} tasks, '
        f"{_escape(_seconds(batch[-1].end - first.start))}"
        f"{'' if wait is None else ', queued ' + _escape(_seconds(wait)) + ' before it started'}"
        "</title></rect>",
    ]
    if draw_tasks:
        for span in batch:
            span_left = x(span.start)
            span_width = max(x(span.end) - span_left, 0.8)
            fill = FAILED_COLOUR if span.failed else colour
            stroke = ' stroke="#ffffff" stroke-width="0.5"' if span_width > 3 else ""
            tip = (
                f"task {span.task} · {span.name} · {_seconds(span.end - span.start)} · "
                f"batch {span.batch} ({span.batch_size} tasks)"
            )
            if span.failed:
                tip += f" · FAILED: {span.error}"
            parts.append(
                f'<rect class="task{" failed" if span.failed else ""}" data-task="{span.task}" '
                f'x="{span_left:.2f}" y="{top + 2}" width="{span_width:.2f}" '
                f'height="{ROW_HEIGHT - 4}" fill="{fill}"{stroke}><title>{_escape(tip)}</title>'
                "</rect>"
            )
    for span in batch:
        if span.failed:
            if not draw_tasks:
                parts.append(
                    f'<rect class="task failed" data-task="{span.task}" x="{x(span.start):.2f}" '
                    f'y="{top + 2}" width="{max(x(span.end) - x(span.start), 2):.2f}" '
                    f'height="{ROW_HEIGHT - 4}" fill="{FAILED_COLOUR}"/>'
                )
            centre = (x(span.start) + x(span.end)) / 2
            parts.append(
                f'<circle cx="{centre:.2f}" cy="{top + ROW_HEIGHT / 2}" r="8" '
                f'fill="{FAILED_COLOUR}" stroke="#fff"/>'
                f'<text class="fail-mark" x="{centre:.2f}" y="{top + ROW_HEIGHT / 2 + 4}" '
                f'text-anchor="middle">✕<title>{_escape(span.error)}</title></text>'
            )
    if width >= 9 * len(str(first.batch_size)) + 6 and not failed:
        parts.append(
            f'<text class="batch-size" x="{left + width / 2:.2f}" y="{top + ROW_HEIGHT / 2 + 4}" '
            f'text-anchor="middle">{first.batch_size}</text>'
        )
    parts.append("</g>")
    return parts


def _page(
    timeline: Timeline,
    svg: str,
    worker_stats: list[tuple[str, int, int, float, float]],
    wall: float,
    draw_tasks: bool,
    trace_events: dict[str, Any],
) -> str:
    n_tasks = len(timeline.spans)
    n_failed = sum(span.failed for span in timeline.spans)
    busy = sum(stat[3] for stat in worker_stats)
    capacity = wall * max(len(worker_stats), 1)
    total = "(total unknown)" if timeline.total is None else f"of {timeline.total}"
    summary = (
        f'backend <b>{_escape(timeline.backend)}</b> · <span id="n-workers">{timeline.n_workers}'
        f'</span> workers ({len(worker_stats)} ran tasks) · <span id="n-tasks">{n_tasks}</span> '
        f"tasks ran, {timeline.n_completed} completed {_escape(total)} · "
        f'<span id="n-failed">{n_failed}</span> failed · wall {_escape(_seconds(wall))} · '
        f"workers busy {100 * busy / capacity:.0f}%, idle {100 - 100 * busy / capacity:.0f}%"
    )
    error = (
        f'<p class="error" id="run-error">Run failed: {_escape(timeline.error)}</p>'
        if timeline.error
        else ""
    )
    worker_rows = "".join(
        f"<tr><td>{_escape(worker)}</td><td>{tasks}</td><td>{batches}</td>"
        f"<td>{_escape(_seconds(busy_s))}</td><td>{_escape(_seconds(idle_s))}</td>"
        f"<td>{100 * busy_s / wall:.0f}%</td></tr>"
        for worker, tasks, batches, busy_s, idle_s in worker_stats
    )
    sizes: dict[int, int] = {}
    for size in timeline.batch_sizes.values():
        sizes[size] = sizes.get(size, 0) + 1
    size_rows = "".join(
        f"<tr><td>{size}</td><td>{count}</td></tr>" for size, count in sorted(sizes.items())
    )
    note = (
        ""
        if draw_tasks
        else f'<p class="note">{n_tasks} tasks: only batches are drawn; tooltips give sizes.</p>'
    )
    if n_tasks > trace.MAX_EMBEDDED_TASKS:
        note += (
            '<p class="note">The saved trace JSON lists batches and failed tasks only; '
            'write trace="....json" for every task.</p>'
        )
    events_json = json.dumps(trace_events, separators=(",", ":")).replace("</", "<\\/")
    title = f"forklift timeline: {n_tasks} tasks on {timeline.backend}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_escape(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>forklift run timeline</h1>
<p class="summary">{summary}</p>
{error}
<div class="legend"><span><i class="swatch" style="background:{BATCH_COLOURS[0]}"></i>
<i class="swatch" style="background:{BATCH_COLOURS[1]}"></i>batches (label: tasks in batch;
lines split tasks)</span><span><i class="swatch" style="background:#f3f3f3"></i>idle</span>
<span><i class="swatch" style="background:{FAILED_COLOUR}"></i>failed task</span></div>
{note}
{svg}
<h2>Workers</h2>
<table id="workers"><tr><th>worker</th><th>tasks</th><th>batches</th><th>busy</th><th>idle</th>
<th>utilisation</th></tr>{worker_rows}</table>
<h2>Batch sizes</h2>
<table id="batch-sizes"><tr><th>tasks per batch</th><th>batches</th></tr>{size_rows}</table>
<button id="save-json" type="button">Save as Chrome trace JSON (open in Perfetto)</button>
<script type="application/json" id="trace-events">{events_json}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
