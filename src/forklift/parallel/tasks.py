"""The task source: pulls the user's calls lazily and checks each one is a call.

Items are ``delayed(f)(...)`` triples or hand-written ``(function, args, kwargs)``; anything
else is refused with an error naming the item and its position.

Large pulls from a fast generator pause the garbage collector
(:mod:`forklift._support.gc_pause`): the calls are young objects that would otherwise be
scanned and promoted over and over while they wait to be sent and to come back. The pause
is taken only when the last pull took under ``MAX_PAUSE_SECONDS`` for :data:`PAUSE_SLICE`
items, and it outlives the pull: the source holds it until :meth:`TaskSource.end_pause`
(the engine ends it before it blocks past :attr:`TaskSource.pause_deadline`, before it
hands results to a consumer outside, and when the run ends) or until a later pull finds it
expired. Measured (20,000 tiny tasks, 2 workers, interleaved, medians): the caller's CPU
went from ~24 ms to ~17 ms with a pause per pull, and to ~15 ms with the pause held
across the run (the calls are then freed before the collector looks at them at all).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from typing import Any

from forklift._support.gc_pause import MAX_PAUSE_SECONDS, CollectionPause
from forklift.errors import InvalidTaskError
from forklift.parallel.backends.base import Call

__all__ = ["PAUSE_SLICE", "TaskSource"]

# Pulls of at least this many calls pause the collector, when the last pull took under
# MAX_PAUSE_SECONDS for this many; the clock is read between slices of this many, so a
# generator that turns slow ends a pause within a slice of its limit.
PAUSE_SLICE = 256


class TaskSource:
    """Pulls items from the user's iterable on demand and checks each is a call triple.

    Calls are normally pulled as they are taken. :meth:`look_ahead` pulls some ahead of
    need (they wait in order), so that the engine sees the input's end coming and can
    split the last calls among the workers instead of handing them to one.
    """

    def __init__(self, tasks: Iterable[Any]) -> None:
        try:
            self._iterator = iter(tasks)
        except TypeError:
            raise InvalidTaskError(
                "Parallel(...) must be called with an iterable of delayed calls, e.g. "
                f"(delayed(f)(x) for x in xs); got {type(tasks).__name__}"
            ) from None
        self.n_taken = 0
        self.exhausted = False  # nothing is left to take
        self._input_ended = False  # the iterable is exhausted (calls may still wait ahead)
        self._ahead: list[Call] = []
        # How long the last pull took per item: the collector is paused only for pulls
        # from a fast generator (unknown, before the first pull: so no pause then).
        self._item_seconds = MAX_PAUSE_SECONDS
        self._pause: CollectionPause | None = None

    @property
    def pause_deadline(self) -> float | None:
        """When the collector pause this source holds must end (``time.perf_counter()``);
        None when it holds none."""
        pause = self._pause
        return None if pause is None or not pause.held else pause.deadline

    def end_pause(self, *, only_if_expired: bool = False) -> None:
        """End the collector pause this source holds, if any (or only once it has expired)."""
        pause = self._pause
        if pause is not None and (not only_if_expired or pause.expired()):
            pause.resume()
            self._pause = None

    @property
    def remaining(self) -> int | None:
        """How many calls are left to take, once the input's end was seen; else None."""
        return len(self._ahead) if self._input_ended else None

    def look_ahead(self, n: int) -> int | None:
        """Pull calls until ``n`` wait ahead (or the input ends); return :attr:`remaining`."""
        missing = n - len(self._ahead)
        if missing > 0 and not self._input_ended:
            self._ahead += self._pull(missing, self.n_taken + len(self._ahead))
        return self.remaining

    def take(self, n: int) -> list[Call]:
        """Up to ``n`` more calls; fewer (maybe none) once the iterable is exhausted."""
        ahead = self._ahead
        if ahead:
            calls = ahead[:n]
            del ahead[:n]
            if len(calls) < n and not self._input_ended:
                calls += self._pull(n - len(calls), self.n_taken + len(calls))
        else:
            calls = [] if self._input_ended else self._pull(n, self.n_taken)
        self.n_taken += len(calls)
        if self._input_ended and not ahead:
            self.exhausted = True
        return calls

    def _pull(self, n: int, first: int) -> list[Call]:
        """The next ``n`` items of the iterable (fewer at its end), checked; ``first`` is the
        position of the first in the whole input, for error messages."""
        started = time.perf_counter()
        pause = self._pause
        if pause is not None and pause.expired():
            # It ran its time: this pull goes unpaused, so that the collector runs (at the
            # first allocations) before the next pull pauses it again.
            self._pause = pause = None
            items = list(itertools.islice(self._iterator, n))
        elif n >= PAUSE_SLICE and self._item_seconds * PAUSE_SLICE < MAX_PAUSE_SECONDS:
            if pause is None:
                self._pause = pause = CollectionPause().__enter__()
            items = _pull_paused(self._iterator, n, pause)
        else:
            items = list(itertools.islice(self._iterator, n))
        if items:
            self._item_seconds = (time.perf_counter() - started) / len(items)
        if len(items) < n:
            self._input_ended = True
        if _all_plain_calls(items):
            return items
        return [_as_call(item, first + position) for position, item in enumerate(items)]


def _pull_paused(iterator: Iterator[Any], n: int, pause: CollectionPause) -> list[Any]:
    """Up to ``n`` items of ``iterator``, pulled under ``pause`` in slices of
    :data:`PAUSE_SLICE` with a look at the clock between them, so that a generator turning
    slow gets the collector back."""
    items: list[Any] = []
    while len(items) < n:
        wanted = min(PAUSE_SLICE, n - len(items))
        before = len(items)
        items += itertools.islice(iterator, wanted)
        if len(items) - before < wanted:
            return items  # the input ended
        if pause.expired():
            break
    items += itertools.islice(iterator, n - len(items))
    return items


def _all_plain_calls(items: list[Any]) -> bool:
    """True when every item is what ``delayed()`` makes: a ``(callable, tuple, dict)`` tuple.

    The caller's cost per task, so written for speed: the items' types are checked in one
    C-level pass, a function shared by consecutive calls is checked once, and positions are
    not counted (20,000 calls: ~1.6 ms, against ~2.1 for one loop doing every check and
    ~2.9 for a C-level pass per check).
    """
    if not _TUPLE.issuperset(map(type, items)):
        return False
    last = None
    try:
        for function, args, kwargs in items:
            if type(args) is not tuple or type(kwargs) is not dict:
                return False
            if function is not last:
                if not callable(function):
                    return False
                last = function
    except ValueError:  # a tuple of another length
        return False
    return True


_TUPLE = frozenset({tuple})


def _as_call(item: Any, index: int) -> Call:
    if isinstance(item, tuple | list) and len(item) == 3:
        function, args, kwargs = item
        if callable(function) and isinstance(args, tuple | list) and isinstance(kwargs, dict):
            return (function, tuple(args), kwargs)
        problem = (
            f"its function {function!r} is not callable"
            if not callable(function)
            else "its args must be a tuple and its kwargs a dict"
        )
    else:
        problem = "it is not a (function, args, kwargs) triple"
    shown = repr(item)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise InvalidTaskError(
        f"item {index} of the task iterable is {shown} ({type(item).__name__}): {problem}. "
        "Each item must be delayed(function)(*args, **kwargs) or (function, args, kwargs)."
    )
