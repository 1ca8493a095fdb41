"""Pause the cyclic garbage collector while many short-lived objects are made in bulk.

Pulling 20,000 ``delayed(f)(i)`` calls makes two tracked objects a call (the call tuple and
its arguments tuple); they live until their batch is pickled and sent. Every 700 of them
the collector runs, finds them alive, and promotes them; the promotions soon trigger full
collections that walk every object of the program. Measured (20,000 tiny tasks, 2 workers,
interleaved, medians): ~72 young, ~6.5 middle and ~0.6 full collections a call cost the
caller ~7 ms of its ~23 ms; pausing the collector while a batch is pulled cut its CPU to
~16 ms and the wall time from ~29 ms to ~21 ms (collections a call: 2.3, 0.2, 0); holding
the pause while the calls are sent and come back (they are then freed unseen) cut the CPU
to ~15 ms. In a process with more objects a full collection costs more, and so does not
pausing (benchmark harness: ~70-120 ms a call before, ~20-40 ms after).

:class:`CollectionPause` pauses it with ``gc.disable()``, which is process-wide, so:

* pauses nest across threads (a count under a lock): the collector comes back when the last
  pause ends, and only if it was enabled when the first began - a program that disabled
  it itself keeps it disabled;
* a pause is short: its holder ends it (:meth:`CollectionPause.resume`) once it has lasted
  :data:`MAX_PAUSE_SECONDS` (a slow generator), so the rest of the program never waits long
  for a collection; garbage made meanwhile is collected at the next allocation after.

Rejected: raising the collector's thresholds (process-wide too, and it never comes back by
itself if a thread dies mid-pause); ``gc.freeze()`` (moves every live object out of reach of
collection for good); untracking the calls (CPython offers no way to from Python).

Imports only the standard library.
"""

from __future__ import annotations

import gc
import threading
import time
from types import TracebackType

__all__ = ["MAX_PAUSE_SECONDS", "CollectionPause"]

# Longest a pause lasts before its holder lets the collector run again (see the docstring).
MAX_PAUSE_SECONDS = 0.02

_lock = threading.Lock()
_holders = 0
_was_enabled = False


class CollectionPause:
    """``with CollectionPause() as pause:`` - no cyclic collection inside (see the module
    docstring); call ``pause.expired()`` between steps to end it early once it ran long."""

    __slots__ = ("_deadline", "_held")

    def __init__(self) -> None:
        self._held = False
        self._deadline = 0.0

    def __enter__(self) -> CollectionPause:
        global _holders, _was_enabled
        with _lock:
            if _holders == 0:
                _was_enabled = gc.isenabled()
                gc.disable()
            _holders += 1
        self._held = True
        self._deadline = time.perf_counter() + MAX_PAUSE_SECONDS
        return self

    @property
    def held(self) -> bool:
        """Whether this pause is still in force."""
        return self._held

    @property
    def deadline(self) -> float:
        """When this pause should end (``time.perf_counter()``; see :meth:`expired`)."""
        return self._deadline

    def expired(self) -> bool:
        """End the pause if it has lasted :data:`MAX_PAUSE_SECONDS`; True once it is over."""
        if self._held and time.perf_counter() >= self._deadline:
            self.resume()
        return not self._held

    def resume(self) -> None:
        """End the pause now (once; leaving the ``with`` block then does nothing)."""
        global _holders
        if not self._held:
            return
        self._held = False
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()

    def __del__(self) -> None:
        # A holder dropped without ending its pause (an error between two steps) must not
        # leave the collector off for good.
        self.resume()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.resume()
