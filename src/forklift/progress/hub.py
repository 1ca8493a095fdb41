"""Delivery of events to reporters: one :class:`EventHub` per run.

The hub shields the run from its reporters: a reporter that raises is logged (its first
failure with a traceback, later ones counted and summed up when the run ends) and the other
reporters - and the run - carry on. Plain callables are accepted as reporters too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from forklift.progress.events import Event, Reporter, RunFinished

__all__ = ["CallbackReporter", "EventHub", "as_reporter"]

log = logging.getLogger("forklift.progress")


class CallbackReporter:
    """Adapts a plain ``callable(event)`` to the :class:`Reporter` protocol."""

    needs_task_times = False

    def __init__(self, callback: Callable[[Event], Any], needs_task_times: bool = False) -> None:
        self.callback = callback
        self.needs_task_times = needs_task_times

    def handle(self, event: Event) -> None:
        self.callback(event)

    def __repr__(self) -> str:
        return f"CallbackReporter({self.callback!r})"


def as_reporter(candidate: object) -> Reporter:
    """``candidate`` itself if it has a ``handle`` method, else a callable wrapped as one."""
    handle = getattr(candidate, "handle", None)
    if callable(handle):
        return candidate  # type: ignore[return-value]
    if callable(candidate):
        return CallbackReporter(candidate)
    raise TypeError(
        f"a reporter must have a handle(event) method or be a callable taking an event; "
        f"got {candidate!r} of type {type(candidate).__name__}"
    )


class EventHub:
    """Sends each event to every reporter, in order; never lets a reporter break the run.

    ``needs_task_times`` is true when some reporter asked for per-task timings.
    """

    def __init__(self, reporters: Iterable[Reporter]) -> None:
        self.reporters = list(reporters)
        self.needs_task_times = any(
            bool(getattr(reporter, "needs_task_times", False)) for reporter in self.reporters
        )
        self._failures: dict[int, int] = {}

    def __bool__(self) -> bool:
        return bool(self.reporters)

    def emit(self, event: Event) -> None:
        for position, reporter in enumerate(self.reporters):
            try:
                reporter.handle(event)
            except Exception:
                count = self._failures.get(position, 0) + 1
                self._failures[position] = count
                if count == 1:
                    log.exception(
                        "progress reporter %r raised while handling %s; the run goes on",
                        reporter,
                        type(event).__name__,
                    )
        if isinstance(event, RunFinished):
            for position, count in self._failures.items():
                if count > 1:
                    log.error(
                        "progress reporter %r raised %d times during the run",
                        self.reporters[position],
                        count,
                    )
            self._failures.clear()
