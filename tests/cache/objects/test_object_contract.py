"""The store contract (tests/cache/test_store_contract.py) run against the object store:
on fsspec's in-memory filesystem and on a real S3 server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.cache.objects.conftest import S3Server
from tests.cache.test_store_contract import (
    test_clear_everything,
    test_clear_item_and_path,
    test_dump_load_round_trip,
    test_function_records,
    test_item_info_is_the_listed_entry,
    test_lock_excludes_and_times_out,
    test_missing_item,
    test_touch_moves_last_access,
    test_versions,
)

from forklift.cache.stores.base import StoreBackendBase
from forklift.cache.stores.objects import ObjectStore

__all__ = [
    "test_clear_everything",
    "test_clear_item_and_path",
    "test_dump_load_round_trip",
    "test_function_records",
    "test_item_info_is_the_listed_entry",
    "test_lock_excludes_and_times_out",
    "test_missing_item",
    "test_touch_moves_last_access",
    "test_versions",
]


@pytest.fixture(params=["memory", "s3"])
def store(request: pytest.FixtureRequest, s3_server: S3Server) -> Iterator[StoreBackendBase]:
    created = ObjectStore()
    if request.param == "memory":
        created.configure(f"memory://contract-{id(request)}/store")
    else:
        if request.node.originalname == "test_touch_moves_last_access":
            pytest.skip("S3 dates objects in whole seconds; the test waits 20 ms")
        created.configure(
            f"s3://{s3_server.new_bucket()}/store",
            backend_options={"storage_options": s3_server.storage_options()},
        )
    yield created
    created.clear()
