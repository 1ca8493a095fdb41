"""What ``Memory(verbose=...)`` prints: what was computed, loaded or invalidated, and why.

verbose 0: nothing; 1: computations and invalidations; 2 and more: cache hits too.
"""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["CacheReporter"]


class CacheReporter:
    """Prints Memory's messages to stdout (as joblib's Memory does)."""

    def __init__(self, verbose: int, stream: TextIO | None = None) -> None:
        self.verbose = verbose
        self._stream = stream

    def _write(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(f"[Memory] {text}\n")
        stream.flush()

    def computing(self, name: str, call: str) -> None:
        if self.verbose >= 1:
            self._write(f"Computing {call}")

    def computed(self, name: str, seconds: float, stored: bool) -> None:
        if self.verbose >= 1:
            where = "cached" if stored else "NOT cached"
            self._write(f"{name} took {seconds:.3f}s, result {where}")

    def loaded(self, name: str, call: str, seconds: float) -> None:
        if self.verbose >= 2:
            self._write(f"Loaded {call} from cache in {seconds * 1e3:.1f} ms")

    def invalidated(self, name: str, location: str, dropped: int, reason: str) -> None:
        if self.verbose >= 1:
            self._write(
                f"{name} changed ({reason}; defined at {location}): "
                f"dropped its {dropped} cached result{'s' if dropped != 1 else ''}"
            )

    def expired(self, name: str, call: str) -> None:
        if self.verbose >= 1:
            self._write(f"Cached result of {call} is no longer valid; recomputing")
