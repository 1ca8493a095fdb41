"""One computation per key across machines: lease objects with an expiry, on object storage.

Object storage has no locks, but S3-compatible servers (AWS S3 since 2024, MinIO, R2, Ceph,
moto) have *conditional writes*, and that is enough for a lease:

1. **Take**: write the lease object with ``If-None-Match: *``. Exactly one writer succeeds;
   it holds the key. The body names the holder (host, process, a random id).
2. **Keep**: while computing, a heartbeat thread rewrites the lease every ``ttl / 3`` seconds
   with ``If-Match: <its etag>`` - every renewal changes the etag.
3. **Wait**: the others poll (a growing sleep, at most :data:`LONGEST_SLEEP`). A lease whose
   etag has not changed for ``ttl`` seconds *of the waiter's own clock* belongs to a holder
   that died (killed worker, lost machine): the waiter takes it over with
   ``If-Match: <that etag>``, so of several waiters exactly one wins. Measuring staleness by
   the waiter's monotonic clock needs no agreement between machines' clocks. A lease the
   server dated more than ``2 * ttl`` ago is stale at once (so a lease left by a crash long
   ago does not cost a new waiter ``ttl``), which tolerates clock skew up to ``ttl``.
4. **Release**: delete the lease with ``If-Match: <its etag>`` (never someone else's).

Trade-offs, chosen on purpose: a dead holder delays the others by up to ``ttl`` (default
30 s; ``backend_options={"lease_seconds": ...}``); a holder stalled for longer than ``ttl``
(a stopped VM) may see its key computed a second time - harmless, because entries are
themselves written with ``If-None-Match: *`` and both results are equivalent. On filesystems
without conditional requests (see :mod:`.object_client`) the same protocol runs with
check-then-write steps: single-flight becomes best effort, entries stay whole.

(Rejected: a DynamoDB- or Redis-style lock service - a second system to run; S3 object lock
and legal hold - retention features, not mutual exclusion.)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from forklift.cache.stores.base import ItemLock
from forklift.cache.stores.object_client import ObjectClient

__all__ = ["FIRST_SLEEP", "LONGEST_SLEEP", "Lease"]

FIRST_SLEEP = 0.02
LONGEST_SLEEP = 0.5


class Lease(ItemLock):
    """The lease of one key; entering yields True once held, False on timeout or when the
    storage refuses writes (``on_error`` is told why, and decides whether to raise)."""

    def __init__(
        self,
        client: ObjectClient,
        path: str,
        timeout: float | None,
        ttl: float,
        on_error: Callable[[OSError], None],
    ) -> None:
        self._client = client
        self._path = path
        self._timeout = timeout
        self._ttl = ttl
        self._on_error = on_error
        self._etag: str | None = None
        self._held = False
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._body = json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid(), "id": uuid.uuid4().hex}
        )

    def _payload(self) -> bytes:
        return f'{{"holder": {self._body}, "renewed": {time.time()}}}'.encode()

    def __enter__(self) -> bool:
        try:
            self._held = self._acquire()
        except OSError as error:
            self._on_error(error)
            self._held = False
        if self._held:
            self._heartbeat = threading.Thread(
                target=self._renew, name="forklift-lease", daemon=True
            )
            self._heartbeat.start()
        return self._held

    def _acquire(self) -> bool:
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        sleep = FIRST_SLEEP
        seen: tuple[object, float] | None = None  # (the lease's version, when first seen)
        while True:
            try:
                self._etag = self._client.put(self._path, self._payload(), create=True)
                return True
            except FileExistsError:
                pass
            current = self._client.info(self._path)
            now = time.monotonic()
            if current is not None:
                if seen is None or seen[0] != current.stamp():
                    seen = (current.stamp(), now)
                stale = now - seen[1] >= self._ttl or time.time() - current.modified > 2 * self._ttl
                if stale:
                    try:
                        self._etag = self._client.replace_if(
                            self._path, self._payload(), current.etag
                        )
                        return True
                    except FileExistsError:
                        seen = None  # another waiter took it over first
            if deadline is not None and now >= deadline:
                return False
            if current is not None:  # gone: try again at once
                time.sleep(sleep if deadline is None else min(sleep, max(deadline - now, 0)))
                sleep = min(sleep * 2, LONGEST_SLEEP)

    def _renew(self) -> None:
        while not self._stop.wait(self._ttl / 3):
            try:
                self._etag = self._client.replace_if(self._path, self._payload(), self._etag)
            except OSError:
                return  # lost or unreachable: the entry's own conditional write still holds

    def __exit__(self, *exc_info: object) -> None:
        if not self._held:
            return
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        with contextlib.suppress(OSError):  # else it expires on its own
            self._client.delete_if(self._path, self._etag)
        self._held = False
