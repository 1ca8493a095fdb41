"""Atomic file writes: a temporary file in the target's directory, renamed into place.

Readers never see a half-written file: the data goes to ``.<name>.<random>.tmp`` next to the
target, is flushed (and optionally fsynced), then :func:`os.replace` swaps it in, which is
atomic on POSIX and Windows within one filesystem. On any error the temporary file is
removed and the target is left as it was.

Imports nothing from forklift.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces ``path`` only if the block succeeds.

    ``fsync=True`` makes the data durable before the rename (a crash cannot leave an empty
    target); it costs a disk flush, so callers writing large throw-away files may turn it off.
    """
    target = Path(path)
    directory = target.parent
    while True:
        temporary = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            # os.open with 0o666 lets the umask apply, so the final file gets the same
            # permissions as one written by open(); mkstemp would force 0o600.
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
