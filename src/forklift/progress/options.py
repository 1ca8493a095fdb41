"""``Parallel``'s observation arguments - ``verbose``, ``progress``, ``reporters``, ``trace`` -
checked once and turned into each run's reporters.

Kept here rather than in ``Parallel`` so that the API layer only passes arguments through and
this room alone knows which reporter draws what.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable
from typing import Any

from forklift.errors import ConfigurationError
from forklift.progress.bar import ProgressBarLike, ProgressReporter
from forklift.progress.events import Event, Reporter
from forklift.progress.hub import as_reporter
from forklift.progress.verbose import VerboseReporter

__all__ = ["ObservationOptions"]


@dataclasses.dataclass(frozen=True)
class ObservationOptions:
    """What a ``Parallel`` shows of its runs, validated (see :meth:`check`)."""

    progress: bool | ProgressBarLike = False
    reporters: tuple[Reporter, ...] = ()
    trace: str | None = None

    @classmethod
    def check(
        cls,
        progress: object = False,
        reporters: Iterable[Reporter | Callable[[Event], Any]] | Reporter | None = None,
        trace: str | os.PathLike[str] | None = None,
    ) -> ObservationOptions:
        """Validate the arguments; raise ConfigurationError naming the bad one."""
        return cls(
            progress=_check_progress(progress),
            reporters=_check_reporters(reporters),
            trace=None if trace is None else _check_trace(trace),
        )

    def reporters_for_run(self, verbose: int) -> list[Reporter]:
        """Fresh reporters for one run (bars and traces hold per-run state), then the user's."""
        reporters: list[Reporter] = []
        if verbose > 0:
            reporters.append(VerboseReporter(verbose))
        if self.progress is True:
            reporters.append(ProgressReporter())
        elif self.progress is not False:
            reporters.append(ProgressReporter(self.progress))
        if self.trace is not None:
            reporters.append(_trace_recorder(self.trace))
        reporters.extend(self.reporters)
        return reporters


# The trace modules are imported on first use: with what they import (json, html, pathlib,
# atomic writes) they were ~8 ms of every `from forklift import Parallel`, which pays for
# them only when a call asks for a trace.
def _check_trace(path: str | os.PathLike[str]) -> str:
    from forklift.progress.trace import check_trace_path

    return check_trace_path(path)


def _trace_recorder(path: str) -> Reporter:
    from forklift.progress.recorder import TraceRecorder

    return TraceRecorder(path)


def _check_progress(value: object) -> bool | ProgressBarLike:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, ProgressBarLike):
        return value
    raise ConfigurationError(
        "progress must be True, False or a progress bar object with update(n), close() and a "
        f"total attribute (such as a tqdm instance); got {value!r}"
    )


def _check_reporters(value: object) -> tuple[Reporter, ...]:
    if value is None:
        return ()
    if callable(value) or callable(getattr(value, "handle", None)):
        value = [value]  # one reporter given on its own
    if not isinstance(value, Iterable):
        raise ConfigurationError(
            "reporters must be a list of reporters (objects with handle(event), or callables "
            f"taking an event); got {value!r}"
        )
    try:
        return tuple(as_reporter(item) for item in value)
    except TypeError as error:
        raise ConfigurationError(str(error)) from None
