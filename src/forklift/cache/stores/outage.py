"""When object storage fails: one warning, then run uncached, then try again later.

A cache must never break the run it speeds up. When the storage is unreachable (server down,
network cut, expired credentials) every request would otherwise cost a connection timeout
and a warning per call; instead the first failure opens an *outage*: one
:class:`~forklift.errors.CacheWarning`, then for ``retry_after`` seconds the store answers
without the network (a miss on reads, a skip on writes) and the function simply runs. The
first request after that tries the storage again. A bucket the credentials may read but not
write (:class:`PermissionError` on a write) is the milder *read-only* state: hits are still
served, writes are skipped, one warning.

``strict=True`` (``backend_options={"strict": True}``) turns both into an error instead:
:class:`~forklift.errors.CacheStoreUnavailableError`, raised from the failing request.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings

from forklift.errors import CacheStoreUnavailableError, CacheWarning

__all__ = ["OutageGuard"]

logger = logging.getLogger("forklift.cache")


class OutageGuard:
    """The reachability state of one store location (see the module docstring)."""

    def __init__(self, location: str, strict: bool, retry_after: float) -> None:
        self.location = location
        self.strict = strict
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._read_only_until = 0.0
        self._warned_down = False
        self._warned_read_only = False

    def up(self) -> bool:
        """False during an outage: skip the request."""
        return time.monotonic() >= self._down_until

    def writable(self) -> bool:
        return self.up() and time.monotonic() >= self._read_only_until

    def failed(self, error: OSError) -> None:
        """Record a failed request; warns once per outage (or raises, in strict mode)."""
        if isinstance(error, PermissionError):
            self._refused(error)
            return
        if self.strict:
            raise CacheStoreUnavailableError(
                f"the cache at {self.location} is unreachable: {error}"
            ) from error
        with self._lock:
            self._down_until = time.monotonic() + self.retry_after
            warn = not self._warned_down
            self._warned_down = True
        if warn:
            _warn(
                f"the cache at {self.location} is unreachable ({error}); running without it "
                f"(trying again every {self.retry_after:g} s)"
            )
        else:
            logger.info("the cache at %s is still unreachable: %s", self.location, error)

    def _refused(self, error: PermissionError) -> None:
        if self.strict:
            raise CacheStoreUnavailableError(
                f"the cache at {self.location} refuses writes: {error}"
            ) from error
        with self._lock:
            self._read_only_until = time.monotonic() + self.retry_after
            warn = not self._warned_read_only
            self._warned_read_only = True
        if warn:
            _warn(
                f"the cache at {self.location} cannot be written ({error}); results are "
                "computed and returned but not stored"
            )

    def recovered(self) -> None:
        """A request succeeded: a later outage warns again."""
        if self._warned_down and self.up():
            with self._lock:
                if self._warned_down:
                    logger.info("the cache at %s is reachable again", self.location)
                self._warned_down = False


def _warn(message: str) -> None:
    # stacklevel: the user's call -> MemorizedFunction -> store -> guard -> here.
    warnings.warn(message, CacheWarning, stacklevel=6)
