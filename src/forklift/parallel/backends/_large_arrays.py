"""From a call's settings to the array files of its scope (process backends only).

``max_nbytes`` (default ``"1M"``; ``None`` turns sharing off), ``mmap_mode`` (default ``"r"``;
``None`` also turns it off, as in joblib) and ``temp_folder`` come from ``Parallel(...)`` or
``parallel_config``; the pool itself never reads settings, so they are turned into explicit
arguments here.
"""

from __future__ import annotations

from forklift._support.sizes import parse_bytes
from forklift.config import Settings
from forklift.pool.page_adoption import adoption_enabled
from forklift.pool.shared_arrays import ArrayFiles

__all__ = ["array_files_for"]


def array_files_for(settings: Settings) -> ArrayFiles | None:
    """The :class:`ArrayFiles` a call with ``settings`` uses, or None when it shares none."""
    if settings.max_nbytes is None or settings.mmap_mode is None:
        return None
    return ArrayFiles(
        threshold=parse_bytes(settings.max_nbytes, name="max_nbytes"),
        mmap_mode=settings.mmap_mode,
        temp_folder=settings.temp_folder,
        adopt=adoption_enabled(),
    )
