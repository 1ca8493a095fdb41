"""Function records: a code change is reported once, even when several processes (here:
threads, each with its own store object and file handles, as processes have) meet it at
the same moment."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

from forklift.cache.identity import identify
from forklift.cache.records import sync_function_record
from forklift.cache.stores.base import CallId
from forklift.cache.stores.local import LocalStore
from forklift.progress.cache_messages import CacheReporter


def normalise(text: str) -> str:
    return text.strip().lower()


class MeetingStore(LocalStore):
    """A local store whose first two record reads wait for each other, so that both
    callers see the old record before either replaces it."""

    meeting = threading.Barrier(2)
    reads = 0
    reads_lock = threading.Lock()

    def read_function_record(self, function: tuple[str, ...]) -> dict[str, Any] | None:
        record = super().read_function_record(function)
        with MeetingStore.reads_lock:
            MeetingStore.reads += 1
            early = MeetingStore.reads <= 2
        if early:
            MeetingStore.meeting.wait(timeout=30)
        return record


def test_a_change_met_by_two_callers_at_once_is_reported_and_dropped_once(
    tmp_path: Path,
) -> None:
    old = identify(normalise, version="1")
    new = identify(normalise, version="2")
    setup = LocalStore()
    setup.configure(str(tmp_path))
    sync_function_record(setup, old, "1", CacheReporter(0))
    for key in ("ab" * 16, "cd" * 16):
        setup.dump_item(CallId(old.path, old.fingerprint, key), key, {})

    stream = io.StringIO()
    reporter = CacheReporter(1, stream)
    errors: list[BaseException] = []

    def caller() -> None:
        store = MeetingStore()
        store.configure(str(tmp_path))
        try:
            sync_function_record(store, new, "2", reporter)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=caller) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    messages = [line for line in stream.getvalue().splitlines() if "changed" in line]
    assert len(messages) == 1, messages
    assert "dropped its 2 cached results" in messages[0]
    assert setup.read_function_record(new.path)["fingerprint"] == new.fingerprint  # type: ignore[index]
