"""Is a cache folder someone else could write to? Memory unpickles what it finds there.

A cache entry is a pickle: loading it can run any code its writer chose. So whoever can
write into the cache folder can run code in every process that reads the cache - the folder
is a trust boundary, like a ``PYTHONPATH`` entry. forklift does not refuse such folders
(teams share caches on purpose), it says so once per folder and process, as a
:class:`~forklift.errors.CacheWarning`.

What counts as writable by others: the cache's own ``forklift`` folder (or the location that
holds it) writable by everyone, or owned by another user (not root). A location writable by
everyone but with the sticky bit (``/tmp``) is fine once the ``forklift`` folder in it is
ours (the owner check): others can then neither rename nor replace it. Group write permission
is not reported (with per-user groups it is the default and harmless; on shared groups, it is
the point).
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

__all__ = ["others_can_write"]

_checked: set[str] = set()
_lock = threading.Lock()


def others_can_write(location: Path, root: Path) -> str | None:
    """Why users other than this one can write into the cache at ``location`` (whose own
    folder is ``root``), or None. Each location is judged once per process."""
    key = os.path.abspath(location)
    with _lock:
        if key in _checked:
            return None
        _checked.add(key)
    me = os.geteuid()
    root_status = _status(root)
    if root_status is not None:
        if root_status.st_uid not in (me, 0):
            return f"{root} belongs to another user (uid {root_status.st_uid})"
        if root_status.st_mode & stat.S_IWOTH:
            return f"{root} is writable by everyone (mode {stat.filemode(root_status.st_mode)})"
    location_status = _status(location)
    if (
        location_status is not None
        and location_status.st_mode & stat.S_IWOTH
        and not location_status.st_mode & stat.S_ISVTX
    ):
        return (
            f"{location} is writable by everyone (mode "
            f"{stat.filemode(location_status.st_mode)}), so others can replace its "
            "'forklift' folder"
        )
    return None


def _status(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None
