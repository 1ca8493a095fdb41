"""Progress bars: counted on completed tasks, drawn right in a terminal, a pipe and a log."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
from typing import Any

import pytest

from forklift.errors import ConfigurationError
from forklift.parallel.api import Parallel, delayed
from forklift.progress.bar import LineBar, ProgressReporter, TextBar, format_clock, make_bar
from forklift.progress.events import BatchCompleted, BatchDispatched, RunFinished, RunStarted

BACKENDS = ["sequential", "threading", "loky"]
RETURN_AS = ["list", "generator", "generator_unordered"]

SCRIPT = textwrap.dedent(
    """
    import sys, time
    if "--no-tqdm" in sys.argv:
        sys.modules["tqdm"] = None  # as if tqdm were not installed
    from forklift.parallel.api import Parallel, delayed

    def slow(x):
        time.sleep(0.01)
        return x

    tasks = [delayed(slow)(i) for i in range(60)]
    if "--generator" in sys.argv:
        tasks = iter(tasks)
    result = Parallel(n_jobs=2, backend="threading", batch_size=2, progress=True)(tasks)
    assert result == list(range(60))
    print("done", file=sys.stderr)
    """
)


class UserBar:
    """A user's own bar, with only what forklift promises to use (plus refresh)."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.n = 0
        self.updates: list[int] = []
        self.closed = 0
        self.refreshed = 0

    def update(self, n: int = 1) -> None:
        self.updates.append(n)
        self.n += n

    def close(self) -> None:
        self.closed += 1

    def refresh(self) -> None:
        self.refreshed += 1


def square(x: int) -> int:
    return x * x


def fail_at(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError("bad")
    return x


def _run_script(args: list[str], env_extra: dict[str, str] | None = None) -> list[str]:
    env = {**os.environ, **(env_extra or {})}
    return [sys.executable, "-c", SCRIPT, *args], env  # type: ignore[return-value]


def run_in_pty(args: list[str], env_extra: dict[str, str] | None = None, columns: int = 100) -> str:
    command, env = _run_script(args, env_extra)
    master, slave = pty.openpty()
    # A fresh pty reports 0x0; give it a terminal's size (rows, columns, pixels).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        process.wait(timeout=30)
    assert process.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def run_in_pipe(args: list[str], env_extra: dict[str, str] | None = None) -> str:
    command, env = _run_script(args, env_extra)
    completed = subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return completed.stderr.decode()


def test_tqdm_bar_in_a_terminal_redraws_in_place_with_rate_and_eta() -> None:
    output = run_in_pty([])
    assert "\r" in output
    final = output.replace("\r\n", "\n").split("\r")[-1]
    assert "100%" in final and "60/60" in final
    assert "tasks/s" in output  # the rate
    assert "<00:00" in output or "<0" in output  # the time left
    assert output.rstrip().endswith("done")


def test_a_terminal_that_reports_no_width_still_gets_a_bar() -> None:
    output = run_in_pty([], columns=0)
    assert "60/60" in output and "tasks/s" in output


def test_without_tqdm_a_terminal_gets_forklifts_own_bar() -> None:
    output = run_in_pty(["--no-tqdm"])
    assert "\r" in output
    assert "[########################] 60/60 tasks (100%)" in output
    assert "tasks/s" in output


def test_unknown_total_in_a_terminal_shows_count_and_rate() -> None:
    output = run_in_pty(["--generator"])
    assert "60/60" in output  # known once the input ran out
    assert "tasks/s" in output


def test_a_pipe_gets_plain_periodic_lines_and_no_carriage_returns() -> None:
    output = run_in_pipe([], {"FORKLIFT_PROGRESS_INTERVAL": "0.05"})
    assert "\r" not in output and "\x1b" not in output
    lines = output.splitlines()
    bar_lines = [line for line in lines if line.startswith("[forklift] Parallel: ")]
    assert len(bar_lines) >= 3  # periodic, not just the last one
    assert "60/60 tasks (100%)" in bar_lines[-1]
    assert all("/60 tasks" in line for line in bar_lines)  # total known from len()
    counts = [int(line.split(": ")[1].split("/")[0]) for line in bar_lines]
    assert counts == sorted(counts)
    assert lines[-1] == "done"


def test_a_long_task_still_gets_log_lines() -> None:
    code = (
        "import time; from forklift.parallel.api import Parallel, delayed; "
        "Parallel(n_jobs=2, backend='threading', progress=True)"
        "(delayed(time.sleep)(2.2) for _ in range(1))"
    )
    env = {**os.environ, "FORKLIFT_PROGRESS_INTERVAL": "0.5"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("[forklift]")]
    assert len(lines) >= 2  # heartbeats wrote lines while the one task ran
    assert lines[0].startswith("[forklift] Parallel: 0/1 tasks (  0%) |")  # total from the input
    assert "1/1 tasks (100%)" in lines[-1]


def test_a_pipe_with_the_default_interval_gets_one_final_line() -> None:
    output = run_in_pipe([])
    bar_lines = [line for line in output.splitlines() if line.startswith("[forklift]")]
    assert len(bar_lines) == 1 and "60/60 tasks (100%)" in bar_lines[0]


@pytest.mark.parametrize("return_as", RETURN_AS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_users_bar_counts_every_completed_task(backend: str, return_as: str) -> None:
    bar = UserBar()
    n_jobs = 1 if backend == "sequential" else 2
    output = Parallel(n_jobs=n_jobs, backend=backend, return_as=return_as, progress=bar)(
        delayed(square)(i) for i in range(30)
    )
    assert sorted(output) == [i * i for i in range(30)]
    assert bar.n == 30 and bar.total == 30 and bar.closed == 1
    assert bar.refreshed >= 1  # the total was shown when it became known


def test_a_tqdm_instance_is_a_bar_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from tqdm import tqdm

    monkeypatch.setattr(tqdm, "monitor_interval", 0)  # tqdm's own thread, not forklift's
    stream = io.StringIO()
    bar = tqdm(file=stream, mininterval=0)
    Parallel(n_jobs=2, backend="threading", progress=bar)(delayed(square)(i) for i in range(25))
    assert bar.n == 25 and bar.total == 25
    assert "25/25" in stream.getvalue()


def test_the_bar_counts_completed_not_dispatched_tasks() -> None:
    bar = UserBar()
    reporter = ProgressReporter(bar)
    reporter.handle(RunStarted("ThreadingBackend", 2, 2))
    reporter.handle(BatchDispatched(0, 0, 10, 10, None, 0.0, 0.0))
    reporter.handle(BatchDispatched(1, 10, 10, 20, 20, 0.0, 0.0))
    assert bar.n == 0 and bar.total == 20
    reporter.handle(BatchCompleted(10, 10, 20, 20, 0.1, "1:w", 1.0, 2.0, batch_index=1))
    assert bar.n == 10
    reporter.handle(RunFinished(10, 20, 0.2, error=True, reason="closed early"))
    assert bar.closed == 1


def test_the_bar_is_closed_when_a_task_fails() -> None:
    bar = UserBar()
    with pytest.raises(ValueError, match="bad"):
        Parallel(n_jobs=2, backend="threading", batch_size=1, progress=bar)(
            delayed(fail_at)(i, 5) for i in range(20)
        )
    assert bar.closed == 1 and bar.n < 20


def test_progress_and_verbose_work_together(capsys: pytest.CaptureFixture[str]) -> None:
    Parallel(n_jobs=2, backend="threading", verbose=11, progress=True)(
        delayed(square)(i) for i in range(10)
    )
    err = capsys.readouterr().err
    assert "[Parallel(n_jobs=2)]: Done  10 out of  10" in err
    assert "[forklift] Parallel: 10/10 tasks (100%)" in err  # capsys is no tty: plain lines


@pytest.mark.parametrize("bad", ["yes", 3, object()])
def test_bad_progress_values_are_refused(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="progress must be"):
        Parallel(progress=bad)


def test_line_bar_writes_at_its_interval_and_at_close() -> None:
    stream = io.StringIO()
    bar = LineBar(stream, total=4, interval=0)
    for _ in range(4):
        bar.update(1)
    bar.close()
    bar.close()  # twice is harmless
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("[forklift] Parallel: 1/4 tasks ( 25%)")
    assert "4/4 tasks (100%)" in lines[-1]
    ticking = io.StringIO()
    LineBar(ticking, total=None, interval=0).tick()  # a heartbeat: a line even with no progress
    assert ticking.getvalue().startswith("[forklift] Parallel: 0 tasks |")
    quiet = io.StringIO()
    slow = LineBar(quiet, total=None, interval=3600)
    slow.update(7)
    slow.close()
    assert quiet.getvalue().count("\n") == 1 and "7 tasks |" in quiet.getvalue()


def test_text_bar_draws_over_itself_and_ends_with_a_newline() -> None:
    stream = io.StringIO()
    bar = TextBar(stream, total=None)
    bar.total = 8
    bar.update(8)
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\rParallel: [") and text.endswith("\n")
    assert "[########################] 8/8 tasks (100%)" in text


def test_make_bar_picks_by_stream() -> None:
    assert isinstance(make_bar(5, io.StringIO()), LineBar)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    from tqdm import tqdm

    bar = make_bar(5, Terminal())
    try:
        assert isinstance(bar, tqdm)
    finally:
        bar.close()


def test_format_clock() -> None:
    assert format_clock(0) == "0:00"
    assert format_clock(75) == "1:15"
    assert format_clock(3725) == "1:02:05"


def test_a_notebook_stream_gets_tqdm_auto_not_plain_lines() -> None:
    # Jupyter's stderr is ipykernel's OutStream: not a tty, yet it renders a redrawn bar.
    Notebook = type("OutStream", (io.StringIO,), {"__module__": "ipykernel.iostream"})
    from tqdm import tqdm

    bar = make_bar(3, Notebook())
    try:
        assert isinstance(bar, tqdm)
    finally:
        bar.close()
