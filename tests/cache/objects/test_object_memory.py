"""Memory on object storage, against a real S3 server on loopback (moto): the guarantees
of the local store - whole entries, code-change invalidation, limits, expiry, damage - and
the failures only object storage has (an outage, a read-only bucket)."""

from __future__ import annotations

import datetime
import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.cache.objects.conftest import S3Server, start_s3_server

from forklift import Memory, Parallel, delayed, expires_after
from forklift.cache.stores.local import LocalStore
from forklift.cache.stores.objects import ObjectStore
from forklift.errors import CacheStoreUnavailableError, CacheWarning, ConfigurationError

MiB = 1024 * 1024


def keys(server: S3Server, url: str) -> list[str]:
    bucket = url.removeprefix("s3://").split("/")[0]
    listed = server.boto().list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def test_urls_open_the_object_store_and_file_urls_the_local_one(tmp_path: Path) -> None:
    assert isinstance(Memory("memory://routing/cache").store_backend, ObjectStore)
    local = Memory(f"file://{tmp_path}/cache").store_backend
    assert isinstance(local, LocalStore) and local.location == f"{tmp_path}/cache"
    explicit = Memory("memory://routing/cache", backend="objects").store_backend
    assert isinstance(explicit, ObjectStore)
    with pytest.raises(ConfigurationError, match="unknown backend_options"):
        Memory("memory://routing/cache", backend_options={"storage_option": {}})


def test_hits_misses_and_pickled_memory(s3_server: S3Server, s3_url: str, s3_options: Any) -> None:
    memory = Memory(s3_url, verbose=0, backend_options=s3_options)
    calls: list[int] = []

    def square(x: int) -> int:
        calls.append(x)
        return x * x

    cached = memory.cache(square)
    assert [cached(2), cached(2), cached(3)] == [4, 4, 9]
    assert calls == [2, 3]
    # A copy (as a worker receives it) finds the same entries on the server.
    again = pickle.loads(pickle.dumps(memory)).cache(square)
    assert again(2) == 4 and calls == [2, 3]
    stored = [key for key in keys(s3_server, s3_url) if key.endswith(".fkl")]
    assert len(stored) == 2  # one object per entry, nothing else for it but a .seen marker
    assert not [key for key in keys(s3_server, s3_url) if "/.leases/" in key]


def test_large_results_travel_in_parallel_parts(s3_server: S3Server, s3_url: str) -> None:
    options = {
        "storage_options": s3_server.storage_options(),
        "part_size": 5 * MiB,
        "concurrency": 4,
    }
    memory = Memory(s3_url, verbose=0, backend_options=options)
    big = memory.cache(np.arange)
    first = big(2_000_000)  # 16 MB: a 4-part multipart upload, then 4 ranged reads
    second = big(2_000_000)
    assert np.array_equal(first, second)
    [entry] = [key for key in keys(s3_server, s3_url) if key.endswith(".fkl")]
    bucket = s3_url.removeprefix("s3://").split("/")[0]
    head = s3_server.boto().head_object(Bucket=bucket, Key=entry)
    assert head["ContentLength"] > 16_000_000
    assert head["ETag"].strip('"').endswith("-4")  # S3's mark of a 4-part upload


def test_damaged_and_truncated_objects_warn_and_recompute(
    s3_server: S3Server, s3_url: str, s3_options: Any
) -> None:
    memory = Memory(s3_url, verbose=0, backend_options=s3_options)
    calls: list[int] = []

    def triple(x: int) -> list[int]:
        calls.append(x)
        return [x] * 1000

    cached = memory.cache(triple)
    cached(1)
    [entry] = [key for key in keys(s3_server, s3_url) if key.endswith(".fkl")]
    bucket = s3_url.removeprefix("s3://").split("/")[0]
    body = s3_server.boto().get_object(Bucket=bucket, Key=entry)["Body"].read()
    for damaged in (body[:-10], body[:-50] + b"x" * 50, b"not an entry at all"):
        s3_server.boto().put_object(Bucket=bucket, Key=entry, Body=damaged)
        with pytest.warns(CacheWarning, match="cannot read cache entry s3://"):
            assert cached(1) == [1] * 1000
        assert cached(1) == [1] * 1000  # stored again, whole
    assert calls == [1, 1, 1, 1]


def test_code_change_drops_the_old_entries(s3_url: str, s3_options: Any) -> None:
    memory = Memory(s3_url, verbose=0, backend_options=s3_options)
    old = memory.cache(version="1")(abs)
    assert (old(-1), old(-2)) == (1, 2)
    store = memory.store_backend
    assert store is not None and len(store.get_items()) == 2
    new = memory.cache(version="2")(abs)
    assert new(-3) == 3
    items = store.get_items()
    assert [item.call_id.version for item in items] == [items[0].call_id.version]
    assert len(items) == 1


def test_bytes_limit_evicts_least_recently_used(s3_url: str, s3_options: Any) -> None:
    memory = Memory(s3_url, verbose=0, backend_options=s3_options, bytes_limit="30K")
    cached = memory.cache(lambda x: bytes(8000) + bytes([x]))
    for x in range(8):
        cached(x)
    store = memory.store_backend
    assert store is not None
    items = store.get_items()
    assert sum(item.size for item in items) <= 30_000
    assert 2 <= len(items) <= 3
    assert memory.reduce_size(items_limit=1) == len(items) - 1
    assert len(store.get_items()) == 1


def test_expires_after_reads_the_stored_time(s3_url: str, s3_options: Any) -> None:
    memory = Memory(s3_url, verbose=0, backend_options=s3_options)
    calls: list[int] = []

    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    fresh = memory.cache(double, cache_validation_callback=expires_after(hours=1))
    assert fresh(5) == fresh(5) == 10 and calls == [5]
    stale = memory.cache(double, cache_validation_callback=expires_after(seconds=0))
    assert stale(5) == 10 and calls == [5, 5]
    assert memory.reduce_size(age_limit=datetime.timedelta(days=1)) == 0


def test_a_lease_left_by_a_dead_holder_expires(s3_url: str, s3_options: Any) -> None:
    memory = Memory(s3_url, verbose=0, backend_options={**s3_options, "lease_seconds": 1.0})
    store = memory.store_backend
    assert isinstance(store, ObjectStore)
    cached = memory.cache(abs)
    assert cached(-1) == 1
    [item] = store.get_items()
    other = item.call_id._replace(key="ab" * 16)
    dead = store.lock_item(other, timeout=None)
    assert dead.__enter__()
    dead._stop.set()  # type: ignore[attr-defined]  # the holder "dies": no more renewals
    dead._heartbeat.join()  # type: ignore[attr-defined]
    with store.lock_item(other, timeout=0.3) as held:
        assert not held  # still fresh
    with store.lock_item(other, timeout=10) as held:
        assert held  # unchanged for a lease period: taken over


def test_an_outage_is_one_warning_and_the_run_completes(s3_server: S3Server) -> None:
    server = start_s3_server()  # one of its own, to stop (the package's warms fsspec up)
    try:
        url = f"s3://{server.new_bucket()}/cache"
        options = {"storage_options": server.storage_options(), "retry_after": 60}
        cached = Memory(url, verbose=0, backend_options=options).cache(lambda x: x + 1)
        assert [cached(x) for x in range(3)] == [1, 2, 3]

        def calls() -> Iterator[Any]:
            for x in range(12):
                if x == 6:
                    server.stop()  # mid-run: tasks before it used the cache, later ones cannot
                yield delayed(cached)(x)

        with pytest.warns(CacheWarning, match="unreachable") as caught:
            results = Parallel(n_jobs=2, backend="threading", batch_size=1)(calls())
        assert results == [x + 1 for x in range(12)]
        assert len([w for w in caught if issubclass(w.category, CacheWarning)]) == 1
        strict = Memory(url, verbose=0, backend_options={**options, "strict": True})
        with pytest.raises(CacheStoreUnavailableError, match="unreachable"):
            strict.cache(lambda x: x + 1)(0)
    finally:
        server.stop()


def test_a_read_only_bucket_serves_hits_and_warns_once(s3_server: S3Server, s3_url: str) -> None:
    writer = Memory(
        s3_url, verbose=0, backend_options={"storage_options": s3_server.storage_options()}
    )
    writer.cache(abs)(-1)
    reader_options = s3_server.storage_options(**s3_server.read_only_credentials())
    s3_server.enforce_auth(True)
    try:
        reader = Memory(s3_url, verbose=0, backend_options={"storage_options": reader_options})
        cached = reader.cache(abs)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert cached(-1) == 1  # a hit: reading is allowed
        with pytest.warns(CacheWarning, match="cannot be written") as caught:
            assert [cached(x) for x in (-2, -3, -4)] == [2, 3, 4]
        assert len(caught) == 1
        strict = Memory(
            s3_url, verbose=0, backend_options={"storage_options": reader_options, "strict": True}
        )
        with pytest.raises(CacheStoreUnavailableError, match="refuses writes"):
            strict.cache(abs)(-5)
    finally:
        s3_server.enforce_auth(False)


def test_a_hit_on_a_small_result_is_two_requests(
    monkeypatch: pytest.MonkeyPatch, s3_url: str, s3_options: Any
) -> None:
    memory = Memory(s3_url, verbose=0, backend_options=s3_options)
    memory.cache(abs)(-7)
    store = memory.store_backend
    assert isinstance(store, ObjectStore)
    requests: list[str] = []
    client = type(store.client)
    for name in ("get", "get_with_info", "info", "put", "replace_if", "delete", "delete_if"):
        original = getattr(client, name)

        def counted(self: Any, *args: Any, _name: str = name, _original: Any = original) -> Any:
            requests.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(client, name, counted)
    fresh = memory.cache(abs)  # no in-memory copy: the entry comes from the server
    assert fresh(-7) == 7
    assert requests == ["get_with_info", "put"]  # the entry, and its last-access marker
    for expected in (["info", "put"], ["info"]):
        # The in-memory copy, checked with one HEAD; the access is recorded at most once a
        # second (memoized.TOUCH_EVERY).
        requests.clear()
        assert fresh(-7) == 7
        assert requests == expected
