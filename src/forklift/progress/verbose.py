"""joblib-style ``verbose`` progress lines, written to stderr, drawn from a run's events.

What a joblib user sees, and so what this reporter writes (prefix ``[Parallel(n_jobs=N)]: ``):

* ``Using backend ThreadingBackend with 2 concurrent workers.`` when the run starts (not for
  the sequential backend - ``n_jobs=1`` runs say nothing up front), with joblib's names for
  the backends it has too (``LokyBackend`` for forklift's process pool, ``"loky"``);
* ``Done  14 tasks      | elapsed:    0.0s`` while the input's length is unknown;
* ``Done  46 out of 100 | elapsed:    0.1s`` for an input with a ``len()`` (numbers as wide as
  the total);
* ``Done  80 out of 100 | elapsed:    0.1s remaining:    0.0s`` once an unsized input ran
  out, so the total became known during the run;
* ``Done 100 out of 100 | elapsed:    0.1s finished`` at the end of a successful run.

Cadence: with ``verbose`` from 1 to 10 lines come ever more sparsely as the count grows (the
gaps widen quadratically, less so as ``verbose`` rises); once an unsized input ran out, about
``verbose`` evenly spaced lines; above 10 every completed batch gets a line.
"""

from __future__ import annotations

import math
import sys
from typing import TextIO

from forklift.progress.events import BatchCompleted, Event, RunFinished, RunStarted

__all__ = ["JOBLIB_BACKEND_NAMES", "VerboseReporter", "display_name", "format_duration"]

# What joblib calls the backend a forklift name stands for: a joblib user reads (and some
# scripts grep) "Using backend LokyBackend", not forklift's class names.
JOBLIB_BACKEND_NAMES: dict[str, str] = {
    "loky": "LokyBackend",
    "processes": "LokyBackend",
    "multiprocessing": "MultiprocessingBackend",
    "threading": "ThreadingBackend",
    "sequential": "SequentialBackend",
}


def display_name(backend_name: str, class_name: str) -> str:
    """The name joblib shows for a backend (``"LokyBackend"`` for ``"loky"``); other
    backends keep their class name (``"DaskBackend"``)."""
    return JOBLIB_BACKEND_NAMES.get(backend_name, class_name)


def format_duration(seconds: float) -> str:
    """``format_duration(5.12) == '   5.1s'``; minutes past a minute (``' 2.0min'``)."""
    if seconds < 60:
        return f" {seconds:5.1f}s"
    return f"{seconds / 60:4.1f}min"


class VerboseReporter:
    """Writes progress lines for a run to ``stream`` (stderr by default)."""

    needs_task_times = False

    def __init__(self, verbose: int, stream: TextIO | None = None) -> None:
        self.verbose = verbose
        self._stream = stream
        self._prefix = "[Parallel]"
        self._last_printed = 0
        self._sized_total: int | None = None

    def _write(self, line: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(f"{self._prefix}: {line}\n")
        stream.flush()

    def handle(self, event: Event) -> None:
        if self.verbose <= 0:
            return
        if isinstance(event, BatchCompleted):
            if self._should_print(event.n_completed, event.total):
                self._print_progress(event)
        elif isinstance(event, RunStarted):
            label = "None" if event.n_jobs is None else str(event.n_jobs)
            self._prefix = f"[Parallel(n_jobs={label})]"
            self._last_printed = 0
            self._sized_total = event.expected_total
            if event.backend_name != "sequential":
                backend = display_name(event.backend_name, event.backend)
                self._write(f"Using backend {backend} with {event.n_workers} concurrent workers.")
        elif isinstance(event, RunFinished) and not event.error:
            total = event.total if event.total is not None else event.n_completed
            width = len(str(total)) if self._sized_total is not None else 3
            extras = [
                f"{count} {label}"
                for count, label in (
                    (event.restored, "restored from the checkpoint"),
                    (event.failed, "failed"),
                    (event.retried, "retried"),
                )
                if count
            ]
            self._write(
                f"Done {event.n_completed:{width}d} out of {total:{width}d} | "
                f"elapsed: {format_duration(event.elapsed)} finished"
                + (f" ({', '.join(extras)})" if extras else "")
            )

    def _should_print(self, n_completed: int, total: int | None) -> bool:
        known = self._sized_total if self._sized_total is not None else total
        if known is not None and n_completed >= known:
            return False  # the RunFinished line reports the end
        if self.verbose > 10:
            return True
        previous, self._last_printed = self._last_printed, n_completed
        if total is not None and self._sized_total is None:
            step = max(1, total // self.verbose)
            return n_completed // step > previous // step
        spacing = 0.5 * (11 - self.verbose) ** 2
        return math.isqrt(int(n_completed / spacing)) > math.isqrt(int(previous / spacing))

    def _print_progress(self, event: BatchCompleted) -> None:
        elapsed = format_duration(event.elapsed)
        if self._sized_total is not None:
            width = len(str(self._sized_total))
            self._write(
                f"Done {event.n_completed:{width}d} out of {self._sized_total:{width}d} | "
                f"elapsed: {elapsed}"
            )
        elif event.total is None:
            self._write(f"Done {event.n_completed:3d} tasks      | elapsed: {elapsed}")
        else:
            remaining = (
                event.elapsed * (event.total - event.n_completed) / max(event.n_completed, 1)
            )
            self._write(
                f"Done {event.n_completed:3d} out of {event.total:3d} | elapsed: {elapsed} "
                f"remaining: {format_duration(remaining)}"
            )
