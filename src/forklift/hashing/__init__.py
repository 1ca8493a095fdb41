"""hash(obj): a stable digest of a Python value, fast for numpy arrays.

What it guarantees: the same value gives the same hex digest in every process, run, machine
and Python minor version (3.10+); dict and set order do not matter; values of different types
differ (``1``, ``1.0``, ``True`` and ``"1"`` all hash differently, so do ``[1]`` and ``(1,)``).
Floats are hashed by their bits, except that every NaN is the same NaN: ``-0.0`` and ``0.0``
differ (code like ``1 / x`` or ``math.copysign`` tells them apart).

How (data flow)::

    obj --Encoder--> type-tagged records --(small: bytearray)---> digest --> hex
                       |                 --(large buffers: slices of their own memory)--^
                       +-- dict/set: sorted digests of their entries

- :mod:`~forklift.hashing.encoder` -- the stream: records, buffering, cycles (back-references).
- :mod:`~forklift.hashing.kinds` -- the table that specifies the encoding
  (:data:`~forklift.hashing.encoder.ENCODING_VERSION`), and records of the built-in types;
  :mod:`~forklift.hashing.stdlib` and :mod:`~forklift.hashing.functions` the standard
  library's value types, and functions, methods, code and modules.
- :mod:`~forklift.hashing.names` -- stable (public-module) names of classes and functions.
- :mod:`~forklift.hashing.objects` -- enums, dataclasses, namedtuples, classes, and the
  fallback through ``__reduce_ex__(4)`` for every other object.
- :mod:`~forklift.hashing.arrays` / :mod:`~forklift.hashing.frames` -- numpy and pandas,
  recognised only if already imported; neither is ever imported by hashing.
- :mod:`~forklift.hashing.digests` -- the digest algorithms by name.

Nothing is hashed through pickle's byte output, whose format changes between Python versions
and protocols; the encoding is forklift's own and versioned, and a change to the stream of any
value must bump :data:`~forklift.hashing.encoder.ENCODING_VERSION` (golden values in the tests
catch accidental changes).

The default digest is xxh3-128 (the ``xxhash`` package): 12-13 GB/s over a large float64
array on the reference machine, against 0.7 GB/s for md5, 1.1 GB/s for sha1, 0.9 GB/s for
blake2b and 4.6 GB/s for blake3 (one thread). 128 bits make accidental collisions negligible;
it is not meant to resist deliberate forgery -- pick ``"blake2b"``, ``"sha256"`` or
``"blake3"`` for that. joblib's ``"md5"`` and ``"sha1"`` are accepted too (the digests differ
from joblib's, as the encoding does).

Known limits: a value shared many times inside one structure is hashed each time it appears
(values, not object identities, are hashed), so a deeply self-sharing DAG is slow; nesting
deeper than the interpreter's recursion limit raises ``RecursionError``; objects without a
rule and without a working ``__reduce_ex__`` raise :class:`~forklift.errors.HashingError`.

This room may import only :mod:`forklift.errors` and :mod:`forklift._support`.
"""

from __future__ import annotations

from typing import Any

from forklift.hashing.digests import DEFAULT_HASH_NAME, HASH_NAMES, get_digest
from forklift.hashing.encoder import ENCODING_VERSION, HEADER, Encoder
from forklift.hashing.functions import FUNCTION_HANDLERS
from forklift.hashing.kinds import BUILTIN_HANDLERS
from forklift.hashing.objects import encode_other
from forklift.hashing.stdlib import STDLIB_HANDLERS

__all__ = ["DEFAULT_HASH_NAME", "ENCODING_VERSION", "HASH_NAMES", "hash"]

# Exact type -> handler; types not in here go through objects.encode_other.
_HANDLERS = {**BUILTIN_HANDLERS, **STDLIB_HANDLERS, **FUNCTION_HANDLERS}


def hash(obj: Any, hash_name: str = DEFAULT_HASH_NAME, coerce_mmap: bool = False) -> str:
    """Return a hex digest of ``obj`` that is stable across processes, runs and machines.

    Args:
        obj: Any value: built-in and standard-library types, numpy and pandas objects, and
            any object pickle could reduce.
        hash_name: The digest algorithm, one of :data:`HASH_NAMES`: ``"xxh3_128"`` (default,
            fastest), ``"blake3"`` (needs the ``blake3`` package), ``"blake2b"``,
            ``"sha256"``, and joblib's ``"md5"`` and ``"sha1"``.
        coerce_mmap: If true, a ``numpy.memmap`` hashes like the ``numpy.ndarray`` with the
            same content; by default the two differ, as in joblib.

    Raises:
        UnknownHashError: ``hash_name`` is not a known name (a :class:`ValueError`).
        HashingError: ``obj`` contains an object that has no rule and cannot be reduced like
            pickle does (a :class:`pickle.PicklingError`).

    Examples:
        >>> from forklift import hash
        >>> hash({"a": 1, "b": [2, 3]}) == hash({"b": [2, 3], "a": 1})   # dict order ignored
        True
        >>> hash([1, 2]) == hash((1, 2)), hash(1) == hash(1.0)              # types count
        (False, False)
        >>> len(hash("x")), len(hash("x", hash_name="sha256"))
        (32, 64)
        >>> import numpy as np
        >>> hash(np.arange(6)) == hash(np.arange(6).reshape(2, 3))          # shape counts
        False
    """
    encoder = Encoder(
        get_digest(hash_name),
        coerce_mmap=bool(coerce_mmap),
        handlers=_HANDLERS,
        other=encode_other,
    )
    encoder.out += HEADER
    encoder.encode(obj)
    return encoder.finish().hex()
