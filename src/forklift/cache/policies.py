"""Cache policies as data: expiry callbacks and least-recently-used eviction.

:func:`select_evictions` is pure: given the entries and the limits it returns what to remove,
so the rule can be tested without a filesystem and reused by any store.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence
from typing import Any

from forklift._support.sizes import parse_bytes
from forklift.cache.stores.base import ItemInfo
from forklift.errors import ConfigurationError

__all__ = ["Limits", "expires_after", "select_evictions"]


def expires_after(
    days: float = 0,
    seconds: float = 0,
    microseconds: float = 0,
    milliseconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    weeks: float = 0,
) -> Callable[[dict[str, Any]], bool]:
    """A ``cache_validation_callback`` that treats entries older than the given age as stale.

    Examples:
        >>> import time
        >>> from forklift import expires_after
        >>> still_fresh = expires_after(hours=1)
        >>> still_fresh({"time": time.time() - 60}), still_fresh({"time": time.time() - 7200})
        (True, False)

        Given to ``Memory.cache``, a stale entry is recomputed:

        >>> import tempfile
        >>> from forklift import Memory
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     memory = Memory(folder, verbose=0)
        ...     fetch = memory.cache(str.upper, cache_validation_callback=expires_after(days=1))
        ...     fetch("rates"), fetch.check_call_in_cache("rates")
        ('RATES', True)
    """
    # The parameters are timedelta's, in its order: passed on positionally, one list to keep.
    limit = datetime.timedelta(
        days, seconds, microseconds, milliseconds, minutes, hours, weeks
    ).total_seconds()

    def cache_is_fresh(metadata: dict[str, Any]) -> bool:
        created = metadata.get("time")
        return isinstance(created, int | float) and time.time() - created < limit

    cache_is_fresh.__qualname__ = f"expires_after({limit}s)"
    return cache_is_fresh


class Limits:
    """Size, count and age limits of a cache, validated once."""

    def __init__(
        self,
        bytes_limit: int | str | None = None,
        items_limit: int | None = None,
        age_limit: datetime.timedelta | float | None = None,
    ) -> None:
        self.bytes_limit = (
            None if bytes_limit is None else parse_bytes(bytes_limit, name="bytes_limit")
        )
        if items_limit is not None and (
            isinstance(items_limit, bool) or not isinstance(items_limit, int) or items_limit < 0
        ):
            raise ConfigurationError(
                f"items_limit must be a non-negative integer, got {items_limit!r}"
            )
        self.items_limit = items_limit
        if isinstance(age_limit, datetime.timedelta):
            age_limit = age_limit.total_seconds()
        if age_limit is not None and (
            isinstance(age_limit, bool) or not isinstance(age_limit, int | float) or age_limit < 0
        ):
            raise ConfigurationError(
                f"age_limit must be a datetime.timedelta or a number of seconds, got {age_limit!r}"
            )
        self.age_limit = None if age_limit is None else float(age_limit)

    @property
    def any(self) -> bool:
        return not (
            self.bytes_limit is None and self.items_limit is None and self.age_limit is None
        )


def select_evictions(items: Sequence[ItemInfo], limits: Limits, now: float) -> list[ItemInfo]:
    """Entries to remove so that what stays is within ``limits``: first those not used for
    longer than ``age_limit``, then the least recently used until both the byte and item
    limits hold."""
    by_last_use = sorted(items, key=lambda item: item.last_access)
    doomed: list[ItemInfo] = []
    kept: list[ItemInfo] = []
    for item in by_last_use:
        if limits.age_limit is not None and now - item.last_access > limits.age_limit:
            doomed.append(item)
        else:
            kept.append(item)
    total_bytes = sum(item.size for item in kept)
    count = len(kept)
    for item in kept:
        over_bytes = limits.bytes_limit is not None and total_bytes > limits.bytes_limit
        over_items = limits.items_limit is not None and count > limits.items_limit
        if not (over_bytes or over_items):
            break
        doomed.append(item)
        total_bytes -= item.size
        count -= 1
    return doomed
