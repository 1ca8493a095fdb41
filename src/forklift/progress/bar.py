"""Progress bars for ``Parallel(progress=...)``: completed tasks, rate and time left.

Decision: tqdm is an *extra* (``pip install forklift[progress]``), not a dependency. With
tqdm installed, a terminal gets a tqdm bar and a notebook gets ``tqdm.auto``'s widget. Without
it, forklift draws its own one-line bar - nothing is lost but polish. Either way, when stderr
is *not* a terminal (a CI log, a file, a pipe) the bar becomes plain lines written every
``interval`` seconds (10 by default, ``FORKLIFT_PROGRESS_INTERVAL`` overrides it) and once
at the end: no carriage returns or escape codes in the log.

The bar counts *completed* tasks. Its total comes from ``len()`` of the task iterable when it
has one, else it is unknown (count and rate only) until the input is exhausted.

A user's own bar works too: anything with ``update(n)``, ``close()`` and a writable ``total``
(a ``tqdm`` instance, a rich/enlighten adapter...). forklift sets ``total`` when it learns it
(then calls ``refresh()`` if the bar has one), calls ``update`` as tasks complete and
``close()`` when the run ends.

This module imports only the standard library and, lazily, tqdm.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from typing import Any, Protocol, TextIO, runtime_checkable

from forklift.progress.events import (
    BatchCompleted,
    BatchDispatched,
    BatchFailed,
    Event,
    Heartbeat,
    RunFinished,
    RunStarted,
)

__all__ = ["LineBar", "ProgressBarLike", "ProgressReporter", "TextBar", "make_bar"]

DEFAULT_LOG_INTERVAL = 10.0


@runtime_checkable
class ProgressBarLike(Protocol):
    """What forklift needs of a bar object: tqdm's ``update``, ``close`` and ``total``."""

    total: Any

    def update(self, n: int = 1) -> Any: ...

    def close(self) -> Any: ...


def format_clock(seconds: float) -> str:
    """``format_clock(75) == '1:15'``, ``format_clock(3725) == '1:02:05'``."""
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _SimpleBar:
    """Shared bookkeeping of forklift's own bars: count, total, rate, time left."""

    def __init__(
        self, stream: TextIO, total: int | None = None, description: str = "Parallel"
    ) -> None:
        self.stream = stream
        self.total = total
        self.n = 0
        self.description = description
        self.start = time.monotonic()
        self.closed = False

    def status(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        parts = []
        if self.total is not None and self.total > 0:
            percent = min(100.0, 100.0 * self.n / self.total)
            parts.append(f"{self.n}/{self.total} tasks ({percent:3.0f}%)")
        else:
            parts.append(f"{self.n} tasks")
        parts.append(f"{rate:.3g} tasks/s" if rate else "? tasks/s")
        parts.append(f"elapsed {format_clock(elapsed)}")
        if self.total is not None and rate > 0 and self.n < self.total:
            parts.append(f"left {format_clock((self.total - self.n) / rate)}")
        return " | ".join(parts)

    def refresh(self) -> None:
        return None

    def update(self, n: int = 1) -> None:
        self.n += n


class LineBar(_SimpleBar):
    """For logs and pipes: one plain line every ``interval`` seconds, and one at the end."""

    def __init__(
        self,
        stream: TextIO,
        total: int | None = None,
        description: str = "Parallel",
        interval: float | None = None,
    ) -> None:
        super().__init__(stream, total, description)
        self.interval = _log_interval() if interval is None else interval
        self._last_line = self.start

    def _line(self) -> None:
        self.stream.write(f"[forklift] {self.description}: {self.status()}\n")
        self.stream.flush()
        self._last_line = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        self.tick()

    def tick(self) -> None:
        """Write a line if ``interval`` passed since the last one."""
        if time.monotonic() - self._last_line >= self.interval:
            self._line()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._line()


class TextBar(_SimpleBar):
    """For a terminal without tqdm: one line redrawn in place, at most 10 times a second."""

    width = 24

    def __init__(
        self, stream: TextIO, total: int | None = None, description: str = "Parallel"
    ) -> None:
        super().__init__(stream, total, description)
        self._last_draw = 0.0
        self._drawn_length = 0
        self._draw()

    def _draw(self) -> None:
        if self.total is not None and self.total > 0:
            filled = min(self.width, self.width * self.n // self.total)
            bar = "#" * filled + "-" * (self.width - filled)
        else:
            bar = "." * self.width
        text = f"{self.description}: [{bar}] {self.status()}"
        padding = " " * max(0, self._drawn_length - len(text))
        self.stream.write(f"\r{text}{padding}")
        self.stream.flush()
        self._drawn_length = len(text)
        self._last_draw = time.monotonic()

    def refresh(self) -> None:
        self._draw()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last_draw >= 0.1:
            self._draw()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


def _log_interval() -> float:
    value = os.environ.get("FORKLIFT_PROGRESS_INTERVAL", "")
    try:
        seconds = float(value)
    except ValueError:
        return DEFAULT_LOG_INTERVAL
    return seconds if seconds >= 0 else DEFAULT_LOG_INTERVAL


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _in_notebook(stream: TextIO) -> bool:
    # Jupyter replaces sys.stderr with ipykernel's OutStream, which is not a tty but does
    # render a redrawn line (and tqdm.auto turns it into a widget).
    return type(stream).__module__.startswith("ipykernel")


def make_bar(
    total: int | None, stream: TextIO | None = None, description: str = "Parallel"
) -> ProgressBarLike:
    """The right bar for ``stream`` (stderr by default): tqdm or forklift's own, a redrawn
    line for a terminal or a notebook, periodic plain lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    notebook = _in_notebook(stream)
    if not notebook and not _is_terminal(stream):
        return LineBar(stream, total, description)
    try:
        tqdm = _tqdm_class(notebook)
    except ImportError:
        return TextBar(stream, total, description)
    # A terminal that reports 0 columns (a bare pty, some CI runners) would make tqdm's
    # dynamic width draw nothing at all: fall back to a fixed width there.
    sized = _terminal_columns(stream) > 0
    bar: ProgressBarLike = tqdm(
        total=total,
        desc=description,
        unit=" tasks",
        file=stream,
        dynamic_ncols=sized,
        ncols=None if sized else 80,
    )
    return bar


@functools.cache
def _tqdm_class(notebook: bool) -> type[Any]:
    """tqdm's bar class without its monitor thread: that thread would outlive the run (it is
    a process-wide daemon) only to refresh bars that forklift already updates as tasks end."""
    if notebook:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

    return type("ForkliftTqdm", (tqdm,), {"monitor_interval": 0})


def _terminal_columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0


class ProgressReporter:
    """Counts completed tasks on a progress bar: ``bar`` if given, else one from
    :func:`make_bar` made when the run starts (and closed when it ends)."""

    needs_task_times = False

    def __init__(
        self,
        bar: ProgressBarLike | None = None,
        *,
        stream: TextIO | None = None,
        description: str = "Parallel",
    ) -> None:
        self._given = bar
        self._stream = stream
        self._description = description
        self.bar: ProgressBarLike | None = bar
        self._total: int | None = None

    def handle(self, event: Event) -> None:
        if isinstance(event, BatchCompleted):
            self._set_total(event.total)
            if self.bar is not None:
                self.bar.update(event.n_tasks)
        elif isinstance(event, BatchDispatched):
            self._set_total(event.total)
        elif isinstance(event, RunStarted):
            self._total = None
            if self._given is None:
                self.bar = make_bar(event.expected_total, self._stream, self._description)
                self._total = event.expected_total
            else:
                self.bar = self._given
                self._set_total(event.expected_total)
        elif isinstance(event, Heartbeat):
            self._set_total(event.total)
            if self.bar is not None:
                _tick(self.bar)
        elif isinstance(event, BatchFailed):
            if self.bar is not None:
                _set_postfix(self.bar, f"{event.error_type} in task {event.failed_task}")
        elif isinstance(event, RunFinished) and self.bar is not None:
            bar, self.bar = self.bar, None
            bar.close()

    def _set_total(self, total: int | None) -> None:
        if total is None or total == self._total or self.bar is None:
            return
        self._total = total
        self.bar.total = total
        refresh = getattr(self.bar, "refresh", None)
        if callable(refresh):
            refresh()


def _tick(bar: ProgressBarLike) -> None:
    """Redraw a bar whose count did not change, so its clock and time left move on."""
    tick = getattr(bar, "tick", None)
    if callable(tick):
        tick()
        return
    refresh = getattr(bar, "refresh", None)
    if callable(refresh):
        refresh()


def _set_postfix(bar: ProgressBarLike, text: str) -> None:
    set_postfix = getattr(bar, "set_postfix_str", None)
    if callable(set_postfix):
        set_postfix(text, refresh=False)
