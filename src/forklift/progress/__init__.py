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

from forklift.progress.bar import ProgressBarLike, ProgressReporter
from forklift.progress.events import (
    BatchCompleted,
    BatchDispatched,
    BatchFailed,
    Event,
    Heartbeat,
    Reporter,
    RunFinished,
    RunStarted,
)
from forklift.progress.hub import CallbackReporter
from forklift.progress.recorder import TraceRecorder
from forklift.progress.verbose import VerboseReporter

__all__ = [
    "BatchCompleted",
    "BatchDispatched",
    "BatchFailed",
    "CallbackReporter",
    "Event",
    "Heartbeat",
    "ProgressBarLike",
    "ProgressReporter",
    "Reporter",
    "RunFinished",
    "RunStarted",
    "TraceRecorder",
    "VerboseReporter",
]
