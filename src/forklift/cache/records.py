"""Function records: what code the cache's entries of a function were computed by.

Each function's folder holds a record (its fingerprint, where it is defined, the digests of
its own code and of each callee's). The first call in a process compares the record with the
code now running: on a difference the entries of other code versions are dropped and the
reason is reported - naming the callee that changed when the record says which.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from forklift.cache.identity import FunctionIdentity, identify
from forklift.cache.stores.base import CallId, StoreBackendBase
from forklift.progress.cache_messages import CacheReporter

__all__ = ["change_reason", "forget_synced", "identify_once", "sync_function_record"]

logger = logging.getLogger("forklift.cache")
RECORD_LOCK_KEY = "function-record"  # a key no call has (call keys are hex digests)
RECORD_LOCK_TIMEOUT = 60.0  # then update anyway: a second report beats a stuck call

_identities: weakref.WeakKeyDictionary[
    Any, dict[tuple[str | None, str | None, str | None], FunctionIdentity]
] = weakref.WeakKeyDictionary()
_synced: set[tuple[str, tuple[str, ...], str]] = set()
_lock = threading.Lock()


def identify_once(
    function: Callable[..., Any], version: str | None, script: str | None, location: str | None
) -> FunctionIdentity:
    """:func:`~forklift.cache.identity.identify`, remembered per function object and process
    (memoized functions are rebuilt for every batch a worker receives)."""
    try:
        known = _identities.setdefault(function, {})
    except TypeError:  # not weak-referenceable (some builtins): no memo
        return identify(function, version, script, location)
    identity = known.get((version, script, location))
    if identity is None:
        identity = known[version, script, location] = identify(function, version, script, location)
    return identity


def change_reason(record: dict[str, Any], identity: FunctionIdentity, version: str | None) -> str:
    """Why the entries recorded by ``record`` are not those of ``identity``, in words."""
    if version is not None:
        return f"version pinned to {version!r}"
    old = record.get("code_digests")
    if not isinstance(old, dict):  # a record written before digests were kept
        reason = "its code changed"
        if identity.dependencies:
            reason += f" or one of the functions it calls did: {', '.join(identity.dependencies)}"
        return reason
    new = dict(identity.code_digests)
    changed = [name for name, digest in new.items() if name in old and old[name] != digest]
    added = [name for name in new if name not in old]
    removed = [name for name in old if name not in new]
    parts = ["its code changed"] if "" in changed else []
    parts += [f"{name} changed" for name in changed if name]
    if added:
        parts.append(f"it now calls {', '.join(added)}")
    if removed:
        parts.append(f"it no longer calls {', '.join(removed)}")
    return "; ".join(parts) or "its code changed"


def sync_function_record(
    store: StoreBackendBase,
    identity: FunctionIdentity,
    version: str | None,
    reporter: CacheReporter,
) -> None:
    """Make the store's record of this function match ``identity`` (once per process)."""
    synced = (store.location, identity.path, identity.fingerprint)
    with _lock:
        if synced in _synced:
            return
    record = store.read_function_record(identity.path)
    if record is None or record.get("fingerprint") != identity.fingerprint:
        # Processes starting together (workers of one Parallel call) all meet the change:
        # one of them updates the record and reports it; the others find it done.
        lock = store.lock_item(
            CallId(identity.path, identity.fingerprint, RECORD_LOCK_KEY), RECORD_LOCK_TIMEOUT
        )
        with lock:
            record = store.read_function_record(identity.path)
            if record is None or record.get("fingerprint") != identity.fingerprint:
                _update_record(store, identity, version, reporter, record)
    with _lock:
        _synced.add(synced)


def _update_record(
    store: StoreBackendBase,
    identity: FunctionIdentity,
    version: str | None,
    reporter: CacheReporter,
    record: dict[str, Any] | None,
) -> None:
    try:
        if record is not None:
            dropped = store.drop_other_versions(identity.path, keep=identity.fingerprint)
            reason = change_reason(record, identity, version)
            logger.info("%s: %s; dropped %d cached results", identity.display_name, reason, dropped)
            reporter.invalidated(identity.display_name, identity.location, dropped, reason)
        store.write_function_record(
            identity.path,
            {
                "name": identity.display_name,
                "fingerprint": identity.fingerprint,
                "location": identity.location,
                "dependencies": list(identity.dependencies),
                "code_digests": dict(identity.code_digests),
                "version": version,
                "time": time.time(),
            },
        )
    except OSError as error:
        # Not worth a warning of its own: storing the result fails too, and warns.
        logger.info("could not record %s in %s: %s", identity.display_name, store.location, error)


def forget_synced(store: StoreBackendBase, identity: FunctionIdentity) -> None:
    """After a clear: the next call in this process writes the record again."""
    with _lock:
        _synced.discard((store.location, identity.path, identity.fingerprint))
