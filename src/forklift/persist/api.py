"""``dump`` and ``load``: joblib's persistence API on top of forklift's file format.

``dump`` writes forklift's own format (``docs/format.md``) to a temporary file next to the
target and renames it into place. ``load`` reads forklift files and, through
:mod:`forklift.persist.legacy`, files written by joblib.

Imports only :mod:`forklift.errors` and :mod:`forklift._support`.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import warnings
from collections.abc import Iterable
from typing import IO, Any

from forklift._support.atomic import atomic_write
from forklift._support.naming import MMAP_MODES
from forklift.errors import ConfigurationError, CorruptFileError, ForkliftError, PersistWarning
from forklift.persist import (
    arrays,
    layout,
    legacy,
    reader,
    safe,
    stream_input,
    stream_limits,
    streams,
    writer,
)
from forklift.persist.collection import paused_collection
from forklift.persist.compressors import resolve_compression

__all__ = ["dump", "load"]

logger = logging.getLogger("forklift.persist")


def _is_path(filename: object) -> bool:
    return isinstance(filename, str | os.PathLike)


def dump(
    value: Any,
    filename: str | os.PathLike[str] | IO[bytes],
    compress: int | bool | str | tuple[str, int] = 0,
    protocol: int | None = None,
) -> list[str]:
    """Persist ``value`` to ``filename`` and return the list of files written.

    Args:
        value: any picklable object; numpy arrays are stored raw and 64-byte aligned, so
            :func:`load` can memory-map them.
        filename: a path (str or :class:`os.PathLike`) or a binary file object open for
            writing. Paths are written atomically: a temporary file in the same directory is
            renamed into place only when the dump succeeded.
        compress: 0-9 (zlib at that level; 0 = none), a bool (True = zlib 3), None (none),
            a compressor name (``zlib gzip bz2 lzma xz lz4 zstd`` or registered) or
            ``(name, level)`` (level 0: none). When no name is given a path's extension
            (``.z .gz .bz2 .lzma .xz .lz4 .zst``) picks one; a file object's name never does.
            A built-in codec writes a standard stream of that codec (``gzip -d`` and the
            like give an uncompressed forklift file), compressed in chunks on every core.
        protocol: pickle protocol; default (None) is 5, which stores arrays out of band.

    Returns:
        ``[str(filename)]`` for a path, ``[]`` for a file object.

    Examples:
        >>> import os, tempfile
        >>> from forklift import dump, load
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "model.fkl")
        ...     written = dump({"weights": [0.5, 1.5], "name": "demo"}, path)
        ...     written == [path], load(path)
        (True, {'weights': [0.5, 1.5], 'name': 'demo'})

        Compression: a level, a name, or the file's extension.

        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "numbers.fkl.gz")   # .gz picks gzip
        ...     _ = dump(list(range(1000)), path)
        ...     _ = dump(list(range(1000)), path + ".raw", compress=("zlib", 6))
        ...     load(path) == load(path + ".raw") == list(range(1000))
        True
    """
    protocol = 5 if protocol is None else protocol
    if (
        not isinstance(protocol, int)
        or isinstance(protocol, bool)
        or not (0 <= protocol <= pickle.HIGHEST_PROTOCOL)
    ):
        raise ConfigurationError(
            f"protocol={protocol!r}: expected an int 0-{pickle.HIGHEST_PROTOCOL} or None"
        )
    if _is_path(filename):
        path = os.fspath(filename)  # type: ignore[arg-type]
        choice = resolve_compression(compress, str(path))
        try:
            with atomic_write(path, fsync=False) as handle, paused_collection():
                writer.write_file(handle, value, choice, protocol)
        except OSError as error:
            raise _naming_target(error, str(path)) from None
        logger.debug("dumped %s (compression %s)", path, choice)
        return [str(path)]
    if not hasattr(filename, "write"):
        raise ConfigurationError(
            f"filename must be a path or a binary file object, not {type(filename).__name__}"
        )
    # As in joblib, a file object's name never picks a codec: a gzip.GzipFile named "x.gz"
    # already compresses what it is given.
    choice = resolve_compression(compress, None)
    # sized: the header records the length, so load() of a socket or pipe stops at the end
    with paused_collection():
        writer.write_file(filename, value, choice, protocol, sized=True)  # type: ignore[arg-type]
    return []


def _naming_target(error: OSError, path: str) -> OSError:
    """``error`` about the hidden temporary file of an atomic write, about ``path`` instead."""
    temporary = os.path.basename(os.fspath(error.filename or ""))
    if not (temporary.startswith(f".{os.path.basename(path)}.") and temporary.endswith(".tmp")):
        return error
    renamed = type(error)(error.errno, error.strerror, path)
    renamed.__traceback__ = error.__traceback__
    return renamed


def load(
    filename: str | os.PathLike[str] | IO[bytes],
    mmap_mode: str | None = None,
    ensure_native_byte_order: bool | str = "auto",
    *,
    allowed_globals: Iterable[str | object] | None = None,
    verify: bool = False,
    max_expansion: float | None = None,
) -> Any:
    """Load the object stored by :func:`dump` (or by joblib's ``dump``) in ``filename``.

    Args:
        filename: a path or a binary file object open for reading, read from its position
            (from its start if nothing follows, as right after ``dump`` wrote to it; a
            non-seekable one to its end). Compressed files may come through any file object,
            e.g. one written through a :class:`gzip.GzipFile`, read back with ``open(path)``.
        mmap_mode: None, ``"r+"``, ``"r"``, ``"w+"`` (treated as ``"r+"``) or ``"c"``: map
            the arrays of an uncompressed file from disk instead of reading them (they load as
            :class:`numpy.memmap`). Ignored, with a :class:`~forklift.errors.PersistWarning`,
            for compressed files and file objects.
        ensure_native_byte_order: as in joblib: True converts arrays stored in the other
            byte order (``">f8"`` on a little-endian machine) to the machine's, False keeps
            them as stored, ``"auto"`` (default) is True without ``mmap_mode`` and False
            with it (a converted copy could not be a map of the file). True together with
            ``mmap_mode`` is an error.
        allowed_globals: None (default) trusts the file, like ``pickle.load``. Otherwise only
            the listed globals (``"module.qualname"`` strings, classes or functions) may be
            imported; :data:`~forklift.persist.SAFE_GLOBALS` covers builtin containers and
            numbers and numpy arrays. Anything else raises
            :class:`~forklift.errors.UnsafeLoadError` naming it, before it is imported. Pickle
            does not run: forklift's decoder builds the allowed values itself (see
            ``docs/persistence.md`` for what this guarantees and what it does not).
        verify: also check the checksums of uncompressed array buffers while reading them.
            Off by default because it can double the time of a large load (see
            ``docs/format.md``); the file's header, trailer and index, its pickle stream and
            every chunk of a compressed file are checked in any case, so truncation and
            damage outside the raw array bytes of an uncompressed file are always detected.
            Memory-mapped arrays are never read at load time, so they are not verified.
        max_expansion: for a compressed file (a codec stream), the most its content may be,
            as a multiple of the file's size (files whose content is at most 64 MiB always
            pass). None (default): 200 with ``allowed_globals``, no limit without. Nothing is
            ever decompressed past the length the content declares; this bounds that
            length, so that a small untrusted file cannot claim gigabytes. ``math.inf``:
            no limit.

    Raises:
        CorruptFileError: the file is truncated, damaged or cannot be unpickled (the message
            names it; any other error while reading is chained to it).
        UnsafeLoadError: ``allowed_globals`` refused a global.

    Examples:
        Large arrays come back as memory maps, read from disk only where they are used:

        >>> import os, tempfile
        >>> import numpy as np
        >>> from forklift import dump, load
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "features.fkl")
        ...     _ = dump({"features": np.ones((100, 100))}, path)
        ...     view = load(path, mmap_mode="r")["features"]
        ...     type(view).__name__, float(view.sum())
        ...     del view                              # release the map before the folder goes
        ('memmap', 10000.0)

        A file from someone else: allow only plain data to be built.

        >>> from forklift import SAFE_GLOBALS
        >>> from forklift.errors import UnsafeLoadError
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "untrusted.fkl")
        ...     _ = dump({"rows": [1, 2], "hook": print}, path)  # a function: code would run
        ...     try:
        ...         load(path, allowed_globals=SAFE_GLOBALS)
        ...     except UnsafeLoadError as error:
        ...         print("refused:", error.refused)
        refused: ('builtins.print',)
    """
    if mmap_mode not in MMAP_MODES:
        raise ConfigurationError(
            f"mmap_mode={mmap_mode!r}: expected one of None, 'r+', 'r', 'w+', 'c'"
        )
    allowed = safe.normalize_allowed(allowed_globals)
    expansion = stream_limits.resolve_max_expansion(max_expansion, allowed is not None)
    native = _native_byte_order(ensure_native_byte_order, mmap_mode)
    with arrays.native_byte_order(native), paused_collection():
        return _load_any(filename, mmap_mode, allowed, verify, expansion)


def _native_byte_order(choice: object, mmap_mode: str | None) -> bool:
    if choice == "auto" and isinstance(choice, str):
        return mmap_mode is None
    if not isinstance(choice, bool):
        raise ConfigurationError(
            f"ensure_native_byte_order={choice!r}: expected True, False or 'auto'"
        )
    if choice and mmap_mode is not None:
        raise ConfigurationError(  # joblib's wording
            "Native byte ordering can only be enforced if 'mmap_mode' parameter is set to "
            f"None, but got 'mmap_mode={mmap_mode}' instead."
        )
    return choice


def _load_any(
    filename: str | os.PathLike[str] | IO[bytes],
    mmap_mode: str | None,
    allowed: frozenset[str] | None,
    verify: bool,
    expansion: float | None,
) -> Any:
    if _is_path(filename):
        path = os.fspath(filename)  # type: ignore[arg-type]
        with open(path, "rb") as handle:
            return _load(
                handle,
                str(path),
                str(path),
                mmap_mode=mmap_mode,
                allowed=allowed,
                verify=verify,
                expansion=expansion,
            )
    if not hasattr(filename, "read"):
        raise ConfigurationError(
            f"filename must be a path or a binary file object, not {type(filename).__name__}"
        )
    if mmap_mode is not None:
        warnings.warn(
            "mmap_mode is ignored when loading from a file object; pass a path to map arrays",
            PersistWarning,
            stacklevel=3,
        )
    file: IO[bytes] = filename  # type: ignore[assignment]
    name = getattr(file, "name", None)
    label = name if isinstance(name, str) else f"<{type(file).__name__}>"
    seekable = _seekable(file)
    if seekable:
        if file.read(1) == b"":
            # Nothing after the position, e.g. right after dump() wrote to this object: read
            # it from its start, as joblib's load does.
            file.seek(0)
        else:
            file.seek(-1, io.SEEK_CUR)
    head = file.read(layout.HEADER_SIZE) or b""
    length = layout.sized_length(head)
    if length is not None:
        # dump() recorded the length: read exactly this file, so a socket need not be closed
        # and whatever follows (another dump) stays for the next load, as with joblib.
        block = stream_input.read_exactly(file, head, length, label)
        return stream_input.read_content(block, label, allowed=allowed, verify=verify)
    if seekable:
        file.seek(-len(head), io.SEEK_CUR)
    else:
        file = io.BytesIO(head + file.read())
    return _load(
        file, label, None, mmap_mode=None, allowed=allowed, verify=verify, expansion=expansion
    )


def _seekable(file: IO[bytes]) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _load(
    file: IO[bytes],
    name: str,
    path: str | None,
    *,
    mmap_mode: str | None,
    allowed: frozenset[str] | None,
    verify: bool,
    expansion: float | None,
) -> Any:
    try:
        start = file.tell()
        head = file.read(streams.DETECT_LENGTH)
        file.seek(start)
        if not head.startswith(layout.MAGIC):
            codec = streams.detect(head)
            if codec is None or not stream_input.holds_forklift(file, codec):
                return legacy.load_legacy(file, name, path, mmap_mode, allowed)
            _warn_not_mapped(name, mmap_mode, codec)
            return stream_input.read_stream(
                file, name, codec, allowed=allowed, verify=verify, max_expansion=expansion
            )
        source = reader.Source(file, name)
        index = reader.read_index(source)
        if index.codec is not None:
            _warn_not_mapped(name, mmap_mode, index.codec)
            mmap_mode = None
        return reader.read_file(
            source, index, path=path, mmap_mode=mmap_mode, allowed=allowed, verify=verify
        )
    except ForkliftError:
        raise
    except OSError as exc:
        if exc.errno is not None:  # the disk or the system failed, not the file's content
            raise
        raise CorruptFileError(f"{name}: cannot be read ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # a file must never surface another error
        raise CorruptFileError(f"{name}: cannot be read ({type(exc).__name__}: {exc})") from exc


def _warn_not_mapped(name: str, mmap_mode: str | None, codec: str) -> None:
    if mmap_mode is not None:
        warnings.warn(
            f"{name}: mmap_mode={mmap_mode!r} is ignored for a compressed file "
            f"({codec}); its arrays are read into memory",
            PersistWarning,
            stacklevel=5,
        )
