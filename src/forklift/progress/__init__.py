"""Progress is observation: the engine emits events, reporters draw them.

The public hook, for users and for forklift's own reporters alike::

    engine --events--> EventHub --handle(event)--> reporters (in the caller's thread)
                                                    |- VerboseReporter  verbose=N lines
                                                    |- ProgressReporter progress=True bar
                                                    |- TraceRecorder    trace="run.html"
                                                    '- yours            reporters=[...]

* :mod:`.events` - the event types (``RunStarted``, ``BatchDispatched``, ``BatchCompleted``,
  ``BatchFailed``, ``Heartbeat``, ``RunFinished``) and the ``Reporter`` protocol;
* :mod:`.hub` - delivery: a reporter that raises is logged and never breaks the run;
* :mod:`.bar` - progress bars (tqdm when installed, forklift's own otherwise);
* :mod:`.verbose` - joblib-style ``verbose`` lines;
* :mod:`.trace` and :mod:`.trace_html` - timelines as Chrome trace JSON and an HTML page;
  :mod:`.recorder` - the ``TraceRecorder`` reporter that writes them.

This room may print (it is one of the two that do, with cli/). It imports only the standard
library, :mod:`forklift.errors`, :mod:`forklift._support` and, lazily, tqdm - never the
engine, backends or config (an import-linter contract in pyproject.toml checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forklift._support.lazy_exports import load_export

if TYPE_CHECKING:
    from forklift.progress.bar import ProgressBarLike as ProgressBarLike
    from forklift.progress.bar import ProgressReporter as ProgressReporter
    from forklift.progress.events import BatchCompleted as BatchCompleted
    from forklift.progress.events import BatchDispatched as BatchDispatched
    from forklift.progress.events import BatchFailed as BatchFailed
    from forklift.progress.events import Event as Event
    from forklift.progress.events import Heartbeat as Heartbeat
    from forklift.progress.events import Reporter as Reporter
    from forklift.progress.events import RunFinished as RunFinished
    from forklift.progress.events import RunStarted as RunStarted
    from forklift.progress.hub import CallbackReporter as CallbackReporter
    from forklift.progress.recorder import TraceRecorder as TraceRecorder
    from forklift.progress.verbose import VerboseReporter as VerboseReporter

# Names load on first use (as forklift's own): the engine imports progress.hub and
# progress.verbose, and must not pay for the trace recorder (json, html, pathlib) each time.
_HOMES = {
    "BatchCompleted": "forklift.progress.events",
    "BatchDispatched": "forklift.progress.events",
    "BatchFailed": "forklift.progress.events",
    "CallbackReporter": "forklift.progress.hub",
    "Event": "forklift.progress.events",
    "Heartbeat": "forklift.progress.events",
    "ProgressBarLike": "forklift.progress.bar",
    "ProgressReporter": "forklift.progress.bar",
    "Reporter": "forklift.progress.events",
    "RunFinished": "forklift.progress.events",
    "RunStarted": "forklift.progress.events",
    "TraceRecorder": "forklift.progress.recorder",
    "VerboseReporter": "forklift.progress.verbose",
}

__all__ = sorted(_HOMES)  # noqa: PLE0605 - derived: one list of the public names, not two


def __getattr__(name: str) -> Any:
    return load_export(__name__, _HOMES, globals(), name)
