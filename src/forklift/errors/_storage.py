"""The errors and warnings of what forklift keeps: hashing, dump/load, the cache."""

from __future__ import annotations

import pickle
from pickle import PicklingError

from forklift.errors._base import ForkliftError, ForkliftWarning

__all__ = [
    "CacheEntryDamagedError",
    "CacheStoreUnavailableError",
    "CacheWarning",
    "CallArgumentsError",
    "CompressorUnavailableError",
    "CorruptFileError",
    "HashingError",
    "PersistError",
    "PersistWarning",
    "UnsafeLoadError",
    "UnsupportedFormatError",
]


class HashingError(ForkliftError, PicklingError):
    """:func:`~forklift.hash` met an object it can neither encode nor reduce like pickle does.

    Derives from :class:`pickle.PicklingError`, which ``joblib.hash`` raises in that case.

    Examples:
        >>> import pickle, threading
        >>> from forklift import hash
        >>> try:
        ...     hash({"lock": threading.Lock()})
        ... except pickle.PicklingError as error:
        ...     print(type(error).__name__)
        HashingError
    """


class PersistError(ForkliftError):
    """Root of the errors of :func:`~forklift.dump` and :func:`~forklift.load`.

    Examples:
        >>> import io
        >>> from forklift import load
        >>> from forklift.errors import PersistError
        >>> try:
        ...     load(io.BytesIO(b"not a pickle at all"))
        ... except PersistError as error:
        ...     print(type(error).__name__, error)
        CorruptFileError <BytesIO>: neither a forklift file nor a joblib file
    """


class CorruptFileError(PersistError, pickle.UnpicklingError):
    """A file is truncated, damaged or not a file forklift can read; the message names it.

    It derives from :class:`pickle.UnpicklingError`, which joblib users catch around ``load``.

    Examples:
        >>> import os, tempfile
        >>> from forklift import dump, load
        >>> from forklift.errors import CorruptFileError
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "cut.fkl")
        ...     _ = dump(list(range(100)), path)
        ...     os.truncate(path, os.path.getsize(path) - 10)   # as a full disk or a copy cut short
        ...     try:
        ...         load(path)
        ...     except CorruptFileError as error:
        ...         print(str(error).replace(folder, "<folder>"))
        <folder>/cut.fkl: truncated or damaged: no valid index at the end of the file
    """


class UnsafeLoadError(PersistError, pickle.UnpicklingError):
    """A restricted load met a global (class or function) outside its allow-list.

    ``refused`` holds the ``module.qualname`` of every global the file would have imported
    that was not allowed. Nothing from the file was constructed.

    Examples:
        >>> import io, uuid
        >>> from forklift import SAFE_GLOBALS, dump, load
        >>> from forklift.errors import UnsafeLoadError
        >>> buffer = io.BytesIO()
        >>> _ = dump({"id": uuid.UUID(int=1)}, buffer)
        >>> try:
        ...     load(io.BytesIO(buffer.getvalue()), allowed_globals=SAFE_GLOBALS)
        ... except UnsafeLoadError as error:
        ...     error.refused
        ('uuid.UUID',)
        >>> load(io.BytesIO(buffer.getvalue()), allowed_globals=SAFE_GLOBALS | {"uuid.UUID"})
        {'id': UUID('00000000-0000-0000-0000-000000000001')}
    """

    def __init__(self, message: str, refused: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.refused = refused


class UnsupportedFormatError(PersistError, ValueError):
    """A file written by a newer forklift, or a legacy layout forklift does not read.

    Examples:
        >>> import io
        >>> from forklift import dump, load
        >>> from forklift.errors import UnsupportedFormatError
        >>> buffer = io.BytesIO()
        >>> _ = dump("data", buffer)
        >>> future = bytearray(buffer.getvalue())
        >>> future[8:12] = bytes([2, 0, 0, 0])   # major version 2, minor 0: a future forklift
        >>> try:
        ...     load(io.BytesIO(bytes(future)))
        ... except UnsupportedFormatError as error:
        ...     print(error)
        <BytesIO>: written in forklift format 2.0; this forklift reads format 1.x - upgrade forklift
    """


class CompressorUnavailableError(PersistError, ImportError):
    """A compressor whose optional package is missing; the message names the extra.

    Code that probes for an optional codec with ``except ImportError`` keeps working.
    """


class PersistWarning(ForkliftWarning):
    """A persistence request that was adjusted, e.g. ``mmap_mode`` on a compressed file.

    Examples:
        >>> import os, tempfile, warnings
        >>> from forklift import dump, load
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "small.fkl.gz")
        ...     _ = dump([1, 2, 3], path)
        ...     with warnings.catch_warnings(record=True) as caught:
        ...         warnings.simplefilter("always")
        ...         value = load(path, mmap_mode="r")      # compressed: read, not mapped
        ...     value, caught[0].category.__name__
        ([1, 2, 3], 'PersistWarning')
    """


class CacheEntryDamagedError(ForkliftError):
    """A cache entry exists but cannot be read back (truncated, corrupted, unreadable).

    Examples:
        Memory itself recovers from a damaged entry (see :class:`CacheWarning`); a shelved
        result raises it:

        >>> import pathlib, tempfile
        >>> from forklift import Memory
        >>> from forklift.errors import CacheEntryDamagedError
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     shelved = Memory(folder, verbose=0).cache(abs).call_and_shelve(-5)
        ...     for output in pathlib.Path(folder).rglob("*.entry"):
        ...         _ = output.write_bytes(b"damaged")
        ...     try:
        ...         shelved.get()
        ...     except CacheEntryDamagedError as error:
        ...         print("cannot read cache entry" in str(error))
        True
    """


class CacheStoreUnavailableError(ForkliftError, ConnectionError):
    """A cache on object storage cannot be reached (or written), and its store was created
    with ``backend_options={"strict": True}``; without it, Memory warns and runs uncached."""


class CacheWarning(ForkliftWarning):
    """Memory could not use its cache (damaged entry, unwritable folder, full disk) and
    computed or returned the result without it.

    Examples:
        >>> import pathlib, tempfile, warnings
        >>> from forklift import Memory
        >>> from forklift.errors import CacheWarning
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     square = Memory(folder, verbose=0).cache(lambda x: x * x)
        ...     first = square(7)
        ...     for output in pathlib.Path(folder).rglob("*.entry"):
        ...         _ = output.write_bytes(b"damaged")
        ...     with warnings.catch_warnings(record=True) as caught:
        ...         warnings.simplefilter("always")
        ...         again = square(7)                # deleted, recomputed, stored again
        ...     first, again, caught[0].category is CacheWarning
        (49, 49, True)
    """


class CallArgumentsError(ForkliftError, TypeError, ValueError):
    """A cached function was called with arguments its signature does not take.

    A ``TypeError``, as calling the function itself raises, and a ``ValueError``, as
    joblib's Memory raises ("Too many arguments for f(a, *, b=1) ...").

    Examples:
        >>> import tempfile
        >>> from forklift import Memory
        >>> from forklift.errors import CallArgumentsError
        >>> def scale(x, *, factor=2):
        ...     return x * factor
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     try:
        ...         Memory(folder, verbose=0).cache(scale)(1, 3)
        ...     except ValueError as error:
        ...         print(type(error).__name__, str(error).splitlines()[0])
        CallArgumentsError Too many arguments for scale(x, *, factor=2): scale(1, 3) was called.
    """
