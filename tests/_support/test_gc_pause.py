"""The collector pause: nests across threads, keeps a user's own gc.disable(), ends early."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator

import pytest

from forklift._support.gc_pause import MAX_PAUSE_SECONDS, CollectionPause


@pytest.fixture(autouse=True)
def _collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_a_pause_disables_the_collector_and_gives_it_back() -> None:
    with CollectionPause():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_program_that_disabled_the_collector_keeps_it_disabled() -> None:
    gc.disable()
    with CollectionPause():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_in_two_threads_end_with_the_last() -> None:
    first_in = threading.Event()
    first_may_leave = threading.Event()
    seen: list[bool] = []

    def hold() -> None:
        with CollectionPause():
            first_in.set()
            first_may_leave.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert first_in.wait(10)
    with CollectionPause():
        first_may_leave.set()
        holder.join(10)
        seen.append(gc.isenabled())  # the other pause ended; this one still holds
    seen.append(gc.isenabled())
    assert seen == [False, True]


def test_a_long_pause_expires_and_leaving_afterwards_changes_nothing() -> None:
    with CollectionPause() as pause:
        assert not pause.expired()
        time.sleep(MAX_PAUSE_SECONDS * 1.5)
        assert pause.expired()
        assert gc.isenabled()
        with CollectionPause():  # another pause meanwhile is not undone by leaving ours
            pass
        gc.disable()
    assert not gc.isenabled()  # the first pause had ended: leaving it touched nothing
