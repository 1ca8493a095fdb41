"""Timeline traces: the Chrome trace-event JSON, and the HTML page rendered in real Chromium."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from forklift.errors import ConfigurationError
from forklift.parallel.api import Parallel, delayed
from forklift.progress import trace_html
from forklift.progress.events import BatchCompleted, BatchFailed, RunFinished, RunStarted
from forklift.progress.recorder import TraceRecorder

ROOT = Path(__file__).resolve().parents[2]
N_TASKS = 48
FAILING_TASK = 29


def work(x: int) -> int:
    time.sleep(0.004 + 0.004 * (x % 3))
    if x == FAILING_TASK:
        raise ValueError(f"bad input {x}")
    return x


def failing_run(path: Path, backend: str = "threading", n_jobs: int = 3) -> None:
    with pytest.raises(ValueError, match="bad input"):
        Parallel(n_jobs=n_jobs, backend=backend, batch_size=2, trace=path)(
            delayed(work)(i) for i in range(N_TASKS)
        )


# -- Chrome trace-event JSON --------------------------------------------------------------


def test_json_trace_of_a_failing_run(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    failing_run(path)
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    names = [e for e in events if e["ph"] == "M" and e["name"] == "thread_name"]
    workers = {e["args"]["name"] for e in names}
    assert 1 <= len(workers) <= 3
    assert all(e["pid"] == os.getpid() for e in names)  # threads: the caller's process
    assert len({(e["pid"], e["tid"]) for e in names}) == len(names)
    tasks = [e for e in events if e["ph"] == "X" and e["cat"].startswith("task")]
    batches = [e for e in events if e["ph"] == "X" and e["cat"] == "batch"]
    assert {e["args"]["batch_size"] for e in batches} == {2}
    task_numbers = sorted(e["args"]["task"] for e in tasks)
    assert FAILING_TASK in task_numbers and len(task_numbers) == len(set(task_numbers))
    failed = [e for e in tasks if e["cat"] == "task,failed"]
    assert len(failed) == 1 and failed[0]["args"]["task"] == FAILING_TASK
    assert failed[0]["args"]["error"] == f"ValueError: bad input {FAILING_TASK}"
    assert failed[0]["name"].endswith("work")
    marks = [e for e in events if e["ph"] == "i"]
    assert len(marks) == 1 and marks[0]["name"] == "failed: ValueError"
    for event in tasks + batches:
        assert event["ts"] >= 0 and event["dur"] >= 0
    # Each task lies inside its batch, on the same track.
    by_batch = {e["args"]["batch"]: e for e in batches}
    for task in tasks:
        batch = by_batch[task["args"]["batch"]]
        assert (task["pid"], task["tid"]) == (batch["pid"], batch["tid"])
        assert (
            batch["ts"] - 1
            <= task["ts"]
            <= task["ts"] + task["dur"]
            <= batch["ts"] + batch["dur"] + 1
        )
    other = trace["otherData"]
    assert other["backend"] == "threading" and other["n_workers"] == 3
    assert other["error"] == f"ValueError: bad input {FAILING_TASK}"


def test_json_trace_of_a_process_run_shows_worker_processes(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    Parallel(n_jobs=2, backend="loky", batch_size=3, trace=path)(
        delayed(work)(i) for i in range(12) if i != FAILING_TASK
    )
    events = json.loads(path.read_text())["traceEvents"]
    pids = {e["pid"] for e in events if e["ph"] == "X"}
    assert pids and os.getpid() not in pids
    assert sum(1 for e in events if e["ph"] == "X" and e["cat"] == "task") == 12


def test_each_call_rewrites_the_trace_atomically(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    parallel = Parallel(n_jobs=2, backend="threading", trace=str(path))
    parallel(delayed(work)(i) for i in range(4))
    parallel(delayed(work)(i) for i in range(6))
    events = json.loads(path.read_text())["traceEvents"]
    assert sum(1 for e in events if e["ph"] == "X" and e["cat"] == "task") == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no temp files left


def test_a_trace_that_cannot_be_written_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "missing-folder" / "run.html"
    with caplog.at_level(logging.ERROR, logger="forklift.progress"):
        result = Parallel(n_jobs=2, backend="threading", trace=path)(
            delayed(work)(i) for i in range(4)
        )
    assert result == [0, 1, 2, 3]
    assert any("TraceRecorder" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("bad", ["run.txt", "run", 42])
def test_trace_needs_an_html_or_json_path(bad: Any) -> None:
    with pytest.raises((ConfigurationError, TypeError)):
        Parallel(trace=bad)


def test_a_batch_without_task_times_is_drawn_as_one_span() -> None:
    recorder = TraceRecorder("unused.json")
    recorder.handle(RunStarted("X", 1, 1, started=10.0))
    recorder.handle(BatchCompleted(4, 4, 4, 4, 1.0, "7:w", 10.0, 11.0, 0, 0))
    assert len(recorder.timeline.spans) == 1
    assert recorder.timeline.spans[0].name == "batch x4"
    # A failed batch without task times: one span for the batch, carrying the error (it
    # need not be the batch's first task that failed).
    recorder.handle(
        BatchFailed(
            1,
            4,
            3,
            6,
            "work",
            "ValueError",
            "boom",
            5,
            2.0,
            "7:w",
            11.0,
            12.5,
            task_names=("work",),
        )
    )
    [_, failed] = recorder.timeline.spans
    assert (failed.task, failed.batch, failed.start, failed.end) == (4, 1, 11.0, 12.5)
    assert (failed.name, failed.error) == ("work x3", "ValueError: boom")


# -- the HTML page, in headless Chromium ------------------------------------------------


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    found = _find_chromium()
    if found is None:
        # The test setup installs Debian's chromium when it can (root or sudo, apt-get).
        script = ROOT / "scripts" / "ensure-chromium.sh"
        subprocess.run(["sh", str(script)], check=False, timeout=900)
        found = _find_chromium()
    if found is None:
        pytest.skip(
            "headless Chromium is not installed and scripts/ensure-chromium.sh could not install "
            "it (needs root or sudo and apt-get); the timeline page was not rendered"
        )
    return found


def _chromium(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    # Chromium's singleton socket path must be short (a Unix socket path is limited to ~107
    # bytes), which pytest's tmp_path is not: use a short private folder, removed afterwards.
    scratch = Path(tempfile.mkdtemp(prefix="fk-chromium-", dir="/tmp"))
    try:
        command = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-crash-reporter",
            "--disable-breakpad",
            f"--user-data-dir={scratch / 'profile'}",
            "--window-size=1200,800",
            *args,
        ]
        env = {**os.environ, "TMPDIR": str(scratch), "HOME": str(scratch)}
        return subprocess.run(
            command, capture_output=True, timeout=90, env=env, check=False, cwd=tmp_path
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes], int]:
    """A tiny PNG decoder (8-bit RGB/RGBA, no interlace): width, height, rows, channels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat = 8, b""
    width = height = channels = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    offset = 0
    for _ in range(height):
        kind, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows, channels


def _colour_counts(png: bytes) -> dict[str, int]:
    width, height, rows, channels = _png_pixels(png)
    counts = {"non_white": 0, "red": 0, "blue": 0, "pixels": width * height}
    for row in rows:
        for x in range(0, width * channels, channels):
            r, g, b = row[x], row[x + 1], row[x + 2]
            if r < 245 or g < 245 or b < 245:
                counts["non_white"] += 1
            if r > 190 and g < 70 and b < 70:
                counts["red"] += 1
            if r < 100 and 100 < g < 140 and b > 150:
                counts["blue"] += 1
    return counts


@pytest.mark.slow
@pytest.mark.timeout(900)  # may include installing chromium on first use
def test_html_page_renders_in_headless_chromium(tmp_path: Path, chromium: str) -> None:
    page = tmp_path / "run.html"
    failing_run(page)
    text = page.read_text()
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text  # self-contained: nothing to fetch
    embedded = re.search(r'<script type="application/json" id="trace-events">(.*?)</script>', text)
    assert embedded is not None
    events = json.loads(embedded.group(1))["traceEvents"]
    spans = [e for e in events if e.get("cat", "").startswith("task")]

    dom = _chromium(chromium, tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    html = dom.stdout.decode()
    workers = re.findall(r'<g class="worker-row" data-worker="([^"]+)" data-tasks="(\d+)"', html)
    assert 1 <= len(workers) <= 3
    assert sum(int(count) for _, count in workers) == len(spans)
    assert len(re.findall(r'<rect class="task( failed)?" data-task="', html)) == len(spans)
    assert len(re.findall(r'<rect class="task failed" data-task="29"', html)) == 1
    assert html.count('class="fail-mark"') == 1
    assert f'<span id="n-tasks">{len(spans)}</span>' in html
    assert '<span id="n-failed">1</span>' in html
    assert re.search(r'id="run-error">Run failed: ValueError: bad input 29<', html)
    assert 'class="idle"' in html  # the gaps are there to hover
    assert "<td>2</td>" in html  # the batch-size table

    shot = tmp_path / "shot.png"
    rendered = _chromium(chromium, tmp_path, f"--screenshot={shot}", page.as_uri())
    assert rendered.returncode == 0 and shot.exists(), rendered.stderr.decode(errors="replace")
    counts = _colour_counts(shot.read_bytes())
    assert counts["non_white"] > 0.03 * counts["pixels"]  # not a blank page
    assert counts["blue"] > 2000  # batches drawn
    assert counts["red"] > 100  # the failure is visible
    if os.environ.get("FORKLIFT_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["FORKLIFT_KEEP_SCREENSHOT"])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_many_tasks_draw_batches_only(
    tmp_path: Path, chromium: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace_html, "MAX_DRAWN_TASKS", 10)
    page = tmp_path / "many.html"
    Parallel(n_jobs=2, backend="threading", batch_size=5, trace=page)(
        delayed(work)(i) for i in range(40) if i != FAILING_TASK
    )
    dom = _chromium(chromium, tmp_path, "--dump-dom", page.as_uri())
    html = dom.stdout.decode()
    assert 'data-task="' not in html  # no per-task rectangles
    assert len(re.findall(r'<rect class="batch"', html)) == 8
    assert "only batches are drawn" in html


def test_trace_finishes_even_with_no_tasks(tmp_path: Path) -> None:
    page = tmp_path / "empty.html"
    assert Parallel(n_jobs=2, backend="threading", trace=page)([]) == []
    assert '<span id="n-tasks">0</span>' in page.read_text()


def test_recorder_reset_per_run(tmp_path: Path) -> None:
    recorder = TraceRecorder(tmp_path / "reset.json")
    recorder.handle(RunStarted("X", 1, 1, started=1.0))
    recorder.handle(BatchCompleted(1, 1, 1, 1, 1.0, "7:w", 1.0, 2.0, 0, 0, (2.0,), ("f",)))
    recorder.timeline.finished = 3.0
    recorder.handle(RunStarted("X", 1, 1, started=5.0))
    assert recorder.timeline.spans == []
    recorder.handle(RunFinished(0, 0, 0.0, False, finished=6.0))
    assert json.loads((tmp_path / "reset.json").read_text())["otherData"]["n_tasks_completed"] == 0


def test_names_and_messages_are_escaped_in_the_page(tmp_path: Path) -> None:
    def hostile(x: int) -> int:
        if x == 3:
            raise ValueError("</script><b>not bold</b>")
        return x

    page = tmp_path / "escaped.html"
    with pytest.raises(ValueError, match="not bold"):
        Parallel(n_jobs=2, backend="threading", batch_size=1, trace=page)(
            delayed(lambda x: hostile(x))(i) for i in range(6)
        )
    text = page.read_text()
    assert text.count("</script>") == 2  # the JSON island and the script; nothing injected
    assert "<b>not bold</b>" not in text
    assert "&lt;lambda&gt;" in text
    island = re.search(r'id="trace-events">(.*?)</script>', text)
    assert island is not None
    failed = [
        e for e in json.loads(island.group(1))["traceEvents"] if e.get("cat") == "task,failed"
    ]
    assert failed[0]["args"]["error"] == "ValueError: </script><b>not bold</b>"


def test_batches_record_their_wait_in_the_queue(tmp_path: Path) -> None:
    path = tmp_path / "queued.json"
    Parallel(n_jobs=2, backend="threading", batch_size=1, pre_dispatch=6, trace=path)(
        delayed(time.sleep)(0.03) for _ in range(6)
    )
    batches = [e for e in json.loads(path.read_text())["traceEvents"] if e.get("cat") == "batch"]
    waits = sorted(e["args"]["queued_ms"] for e in batches)
    assert waits[0] < waits[-1]  # the first ones started at once
    assert waits[-1] > 45  # the last ones waited for two rounds on two workers


def test_a_huge_run_embeds_only_batches_in_its_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forklift.progress import trace

    monkeypatch.setattr(trace, "MAX_EMBEDDED_TASKS", 5)
    page = tmp_path / "huge.html"
    Parallel(n_jobs=2, backend="threading", batch_size=4, trace=page)(
        delayed(abs)(i) for i in range(20)
    )
    text = page.read_text()
    island = re.search(r'id="trace-events">(.*?)</script>', text)
    assert island is not None
    kinds = {e.get("cat") for e in json.loads(island.group(1))["traceEvents"]}
    assert "batch" in kinds and "task" not in kinds
    assert "lists batches and failed tasks only" in text
    assert len(re.findall(r'<rect class="task" data-task=', text)) == 20  # still drawn
