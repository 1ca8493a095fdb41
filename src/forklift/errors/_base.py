"""The tree's root, its warnings' root, and the errors of a value forklift cannot use.

Everything else in :mod:`forklift.errors` derives from these. Imports only the standard library.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ForkliftError",
    "ForkliftWarning",
    "MissingDependencyError",
    "UnknownBackendError",
    "UnknownCompressorError",
    "UnknownHashError",
    "UnknownStoreError",
]


class ForkliftError(Exception):
    """Root of every error forklift raises on its own account.

    Examples:
        >>> from forklift import ForkliftError, hash
        >>> try:
        ...     hash(1, hash_name="nope")
        ... except ForkliftError as error:       # also a ValueError, as joblib would raise
        ...     print(type(error).__name__, isinstance(error, ValueError))
        UnknownHashError True
    """


class ForkliftWarning(UserWarning):
    """Root of forklift's warnings.

    Examples:
        >>> import io, warnings
        >>> from forklift import dump, load
        >>> from forklift.errors import ForkliftWarning
        >>> buffer = io.BytesIO()
        >>> _ = dump([1, 2], buffer)
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("error", ForkliftWarning)   # e.g. in a test suite
        ...     try:
        ...         load(io.BytesIO(buffer.getvalue()), mmap_mode="r")
        ...     except ForkliftWarning as warning:
        ...         print(type(warning).__name__)
        PersistWarning
    """


class ConfigurationError(ForkliftError, ValueError):
    """A parameter has a value forklift cannot use; the message says which and why.

    Examples:
        >>> from forklift import Parallel
        >>> try:
        ...     Parallel(n_jobs=0)
        ... except ValueError as error:          # a ConfigurationError is a ValueError
        ...     print(error)
        n_jobs == 0 in Parallel has no meaning: use a positive number of workers, -1 for all ...
    """


class UnknownBackendError(ConfigurationError):
    """A backend name that nobody registered; the message lists the known names.

    Examples:
        >>> from forklift import Parallel
        >>> from forklift.errors import UnknownBackendError
        >>> try:
        ...     Parallel(backend="threads")
        ... except UnknownBackendError as error:
        ...     print(error)
        Invalid backend: threads, expected one of [...'threading']: no backend is registered ...
    """


class UnknownHashError(ConfigurationError):
    """A ``hash_name`` that :func:`~forklift.hash` does not know; the message lists the known.

    Examples:
        >>> from forklift import hash
        >>> try:
        ...     hash([1, 2], hash_name="crc32")
        ... except ValueError as error:
        ...     print(error)
        Valid options for 'hash_name' are ('xxh3_128', 'blake3', ...). Got hash_name='crc32' ...
    """


class UnknownCompressorError(ConfigurationError):
    """A ``compress`` name that nobody registered; the message lists the known names.

    Examples:
        >>> import io
        >>> from forklift import dump
        >>> try:
        ...     dump([1, 2], io.BytesIO(), compress="rar")
        ... except ValueError as error:          # a ConfigurationError, so a ValueError
        ...     print(type(error).__name__, error)
        UnknownCompressorError Non valid compression method given: "rar". Possible values are ...
    """


class UnknownStoreError(ConfigurationError, TypeError):
    """``Memory(backend=...)`` names a store nobody registered.

    Also a ``TypeError``, which joblib raises there ("Unknown location ... or backend ...").

    Examples:
        >>> import tempfile
        >>> from forklift import Memory
        >>> from forklift.errors import UnknownStoreError
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     try:
        ...         Memory(folder, backend="s3")
        ...     except UnknownStoreError as error:
        ...         print(str(error).split(";")[0].replace(folder, "DIR"))
        Unknown location DIR or backend 's3'
    """


class MissingDependencyError(ConfigurationError, ImportError):
    """A feature needs an optional extra that is not installed; the message names the extra.

    It is an ``ImportError`` too, so code that probes for an optional backend with
    ``except ImportError`` keeps working.
    """
