"""Objects sent to each worker once per scope instead of once per task.

A function with a closure over a 100 MB array, or with large default arguments, would cost
100 MB per batch if it were pickled with every batch. Instead a task submitted with a
:class:`SharingScope` is pickled by :class:`ScopedPickler`, which puts a token in place of
each function and notes the tokens; before a worker receives the task, the pool sends it the
definitions it lacks, once; the worker keeps them until the scope ends.

Why a scope and not a cache keyed by the object: a function's closure or globals may change
between two calls (``x = 2`` after a first run); re-sending per scope (one ``Parallel`` call)
sees the change, as joblib users expect, while still sending once per call.

Imports only the standard library, cloudpickle and :mod:`forklift.errors`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import itertools
import mmap
import os
import pickle
import sys
import types
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import cloudpickle

from forklift.errors import TaskPicklingError, TempSpaceError
from forklift.pool import main_classes
from forklift.pool.shared_arrays import ArrayFiles, is_numpy_array, write_at

__all__ = [
    "Definition",
    "ScopeCounts",
    "ScopedPickler",
    "SharingScope",
    "dumps_scoped",
    "load_shared_definition",
    "lookup_shared",
    "make_definition",
    "pack_result",
    "pickle_task",
]

_tokens = itertools.count(1)
# Definitions at least this large go through shared memory instead of the socket.
LARGE_DEFINITION = 1 << 20

# In a worker: token -> the shared object, filled by DEFINE messages.
WORKER_OBJECTS: dict[int, Any] = {}


def lookup_shared(token: int) -> Any:
    """In a worker, a token unpickles as the shared object it stands for."""
    try:
        return WORKER_OBJECTS[token]
    except KeyError:
        raise LookupError(
            f"shared object {token} was not sent to this worker before a task that uses it"
        ) from None


@dataclasses.dataclass
class Definition:
    """A pickled shared object, ready to send.

    Small ones travel inline. Large ones (a closure over a big array) are written once into
    an anonymous shared-memory file (``memfd``) whose descriptor is passed to each worker over
    its socket: the array's bytes are copied once in all, not once per worker, and the worker
    maps them instead of reading them (pickle protocol 5 out-of-band buffers).
    """

    inline: bytes = b""
    fd: int = -1
    layout: bytes = b""  # pickled (total size, pickle span, buffer spans) inside the memfd

    @property
    def shared(self) -> bool:
        return self.fd >= 0

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def make_definition(obj: Any) -> Definition:
    buffers: list[pickle.PickleBuffer] = []
    data = cloudpickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    if not buffers:
        return Definition(inline=data)
    raws = [buffer.raw() for buffer in buffers]
    total = len(data) + sum(raw.nbytes for raw in raws)
    if total < LARGE_DEFINITION or not hasattr(os, "memfd_create"):
        return Definition(inline=cloudpickle.dumps(obj, protocol=5))
    return _to_memfd(data, raws)


def _to_memfd(data: bytes, raws: list[memoryview]) -> Definition:
    spans: list[tuple[int, int]] = []
    offset = _align(len(data))
    for raw in raws:
        spans.append((offset, offset + raw.nbytes))
        offset = _align(offset + raw.nbytes)
    size = max(offset, 1)
    fd = os.memfd_create("forklift-shared", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        # pwrite, not an mmap: the kernel fills the pages without a fault per page.
        write_at(fd, memoryview(data), 0)
        for (start, _), raw in zip(spans, raws, strict=True):
            write_at(fd, raw.cast("B"), start)
    except BaseException:
        os.close(fd)
        raise
    return Definition(fd=fd, layout=pickle.dumps((size, (0, len(data)), spans)))


class _ResultPickler(main_classes.MainClassPickler):
    """Sends a ``numpy.memmap`` result back as a plain array of the same dtype: numpy's own
    pickling of a memmap drops a non-native byte order (``>f8`` came back as ``<f8``), and
    joblib returns memmaps from workers as arrays too."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind.__name__ == "memmap" and kind.__module__ == "numpy":
            return obj.view(sys.modules["numpy"].ndarray).__reduce_ex__(5)
        return super().reducer_override(obj)


def pack_result(obj: Any) -> Definition:
    """Pickle a task's result in one pass; large buffers (arrays of ``LARGE_DEFINITION`` bytes
    or more) go into a memfd the caller maps, so they are copied once in all (by the worker,
    into shared memory) instead of through the socket and again when unpickled."""
    buffers: list[pickle.PickleBuffer] = []

    def keep_large_apart(buffer: pickle.PickleBuffer) -> bool:
        if buffer.raw().nbytes < LARGE_DEFINITION or not hasattr(os, "memfd_create"):
            return True  # in-band
        buffers.append(buffer)
        return False

    # The caller's __main__ classes arrive as the caller's own (see .main_classes).
    with io.BytesIO() as file:
        _ResultPickler(file, protocol=5, buffer_callback=keep_large_apart).dump(obj)
        data = file.getvalue()
    if not buffers:
        return Definition(inline=data)
    return _to_memfd(data, [buffer.raw() for buffer in buffers])


def load_shared_definition(layout: bytes | memoryview, fd: int) -> Any:
    """In a worker: map a large definition's memfd and unpickle it without copying arrays."""
    size, (start, end), spans = pickle.loads(layout)
    try:
        # A private (copy-on-write) mapping: arrays are writable, writes stay local.
        memory = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)
    finally:
        os.close(fd)
    view = memoryview(memory)
    return pickle.loads(view[start:end], buffers=[view[a:b] for a, b in spans])


def _align(offset: int) -> int:
    return (offset + 63) // 64 * 64


class SharingScope:
    """Objects shared with workers for a while (typically: one ``Parallel`` call).

    Not thread-safe for ``share`` from several threads at once; one caller owns a scope.

    ``arrays``, when set, makes large numpy arrays in tasks travel as memory-mapped files
    (see :mod:`.shared_arrays`): each is written once per scope and opened once per worker.
    """

    def __init__(self, arrays: ArrayFiles | None = None) -> None:
        self.arrays = arrays
        self._refs: dict[Hashable, tuple[Any, int]] = {}
        self._by_token: dict[int, Any] = {}
        self._payloads: dict[int, Definition] = {}
        self.closed = False

    def share(self, obj: Any, key: Hashable = None) -> int:
        """The token standing for ``obj`` in this scope (the same token for the same object).

        ``key`` identifies objects that are equal for this purpose without being the same
        object (e.g. ``obj.method`` makes a new bound method each time it is read); by
        default an object is identified by its ``id``.
        """
        if key is None:
            key = id(obj)
        entry = self._refs.get(key)
        if entry is not None:
            return entry[1]
        token = next(_tokens)
        # Holding obj keeps its id (and those inside a key) from being reused meanwhile.
        self._refs[key] = (obj, token)
        self._by_token[token] = obj
        return token

    def share_array(self, array: Any) -> int | None:
        """The token standing for a large array's file, or None to pickle ``array`` inline."""
        if self.arrays is None:
            return None
        reference = self.arrays.reference(array)
        if reference is None:
            return None
        return self.share(reference, key=reference)

    def payload(self, token: int) -> Definition:
        """The pickled definition of ``token`` (pickled once, on first need)."""
        definition = self._payloads.get(token)
        if definition is None:
            definition = make_definition(self._by_token[token])
            self._payloads[token] = definition
        return definition

    def close(self) -> None:
        """Release the shared memory of large definitions (workers keep their mappings)."""
        self.closed = True
        for definition in self._payloads.values():
            definition.close()
        if self.arrays is not None:
            self.arrays.close()

    def tokens(self) -> list[int]:
        return list(self._by_token)

    def describe(self, token: int) -> str:
        obj = self._by_token.get(token)
        return str(getattr(obj, "__qualname__", None) or type(obj).__name__)


class ScopeCounts:
    """How many tasks of each scope a pool holds, and the scopes waiting for theirs to end.

    A released scope is closed (its definitions dropped by the workers, its shared memory
    freed) only once no task of it is left: a task still queued would find its functions gone.
    """

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}  # id(scope) -> tasks held
        self._closing: list[SharingScope] = []

    def opened(self, scope: SharingScope) -> None:
        key = id(scope)
        self._counts[key] = self._counts.get(key, 0) + 1

    def ended(self, scope: SharingScope) -> bool:
        """A task of ``scope`` left the pool; True when a released scope may now be closed."""
        key = id(scope)
        left = self._counts.get(key, 1) - 1
        if left > 0:
            self._counts[key] = left
            return False
        self._counts.pop(key, None)
        return bool(self._closing)

    def release(self, scope: SharingScope) -> None:
        self._closing.append(scope)

    def finished(self) -> list[SharingScope]:
        """The released scopes with no task left (no longer counted as closing)."""
        done = [scope for scope in self._closing if not self._counts.get(id(scope))]
        self._closing = [scope for scope in self._closing if self._counts.get(id(scope))]
        return done


def _token_for(scope: SharingScope, obj: Any) -> int | None:
    """The token standing for ``obj`` in ``scope`` if it is sent once per scope (functions,
    ``functools.partial``, bound methods, large arrays); None to pickle it in the task."""
    kind = type(obj)
    if kind is types.FunctionType or kind is functools.partial:
        if obj is lookup_shared or _is_plumbing(obj):
            return None
        return scope.share(obj)
    if kind is types.MethodType:
        # obj.method is a new object each time it is read: identify it by what it binds.
        return scope.share(obj, (id(obj.__self__), id(obj.__func__)))
    if is_numpy_array(kind):
        return scope.share_array(obj)
    return None


class ScopedPickler(cloudpickle.Pickler):  # type: ignore[misc]
    """Pickles a task with its functions replaced by tokens of ``scope``.

    Functions (plain, ``functools.partial`` and bound methods) found while pickling are
    registered in the scope and pickled as a lookup of their token; :attr:`tokens` collects
    the tokens this task needs. Pickle's memo means a function shared by 10,000 calls of a
    batch costs one lookup, and no Python code runs for plain data (ints, strings, tuples).
    """

    def __init__(self, file: io.BytesIO, scope: SharingScope) -> None:
        super().__init__(file, protocol=5)
        self.scope = scope
        self.tokens: set[int] = set()

    def reducer_override(self, obj: Any) -> Any:
        token = _token_for(self.scope, obj)
        if token is None:
            return super().reducer_override(obj)
        self.tokens.add(token)
        return lookup_shared, (token,)


class _NeedsCloudpickle(Exception):
    """Raised by :class:`_PlainScopedPickler` for what only cloudpickle pickles right."""


# cloudpickle's rule for "pickled by name" (importable, not __main__, not registered for
# pickling by value); without it (another cloudpickle) every class takes the slow path.
_by_reference: Any = getattr(cloudpickle.cloudpickle, "_should_pickle_by_reference", None)
_BY_VALUE_MODULES: Any = getattr(cloudpickle.cloudpickle, "_PICKLE_BY_VALUE_MODULES", {None})
_BY_NAME: dict[type, None] = {}


class _PlainScopedPickler(pickle.Pickler):
    """:class:`ScopedPickler`'s fast path: the standard C pickler with the same tokens.

    Once functions are tokens, what is left of a task is nearly always plain data and
    importable classes, which the standard pickler handles alone; cloudpickle's pickler runs
    Python code for every object that is not a builtin scalar or container. A 1-call batch
    (with its ``Settings``): ~10 us instead of ~30. Every class met is checked; one that must
    travel by value (defined in ``__main__`` or locally, or registered with cloudpickle)
    raises :class:`_NeedsCloudpickle` and :func:`dumps_scoped` starts again with
    :class:`ScopedPickler`, as it does on any other failure (a module, a property, ...).
    Rejected: pickling with plain pickle and checking the result afterwards - a class
    pickled by name loads in the caller, so only the worker would notice.
    """

    def __init__(self, file: io.BytesIO, scope: SharingScope) -> None:
        super().__init__(file, protocol=5)
        self.scope = scope
        self.tokens: set[int] = set()

    def reducer_override(self, obj: Any) -> Any:
        token = _token_for(self.scope, obj)
        if token is not None:
            self.tokens.add(token)
            return lookup_shared, (token,)
        if isinstance(obj, type) and not _pickled_by_name(obj):
            raise _NeedsCloudpickle
        return NotImplemented


def _pickled_by_name(cls: type) -> bool:
    """Whether cloudpickle pickles ``cls`` by name (remembered for classes that are, while no
    module is registered for pickling by value: the check costs ~2 us a class, per task)."""
    if cls in _BY_NAME and not _BY_VALUE_MODULES:
        return True
    if _by_reference is None or not _by_reference(cls):
        return False
    if not _BY_VALUE_MODULES:
        _BY_NAME[cls] = None  # importable: its module holds it anyway, no leak
    return True


def _is_plumbing(function: Any) -> bool:
    module = getattr(function, "__module__", None) or ""
    return module.startswith(("cloudpickle", "forklift.pool", "copyreg", "pickle"))


def dumps_scoped(obj: Any, scope: SharingScope) -> tuple[bytes, set[int]]:
    """Pickle ``obj`` sharing its functions through ``scope``; return the tokens it needs."""
    try:
        return _dump(_PlainScopedPickler, obj, scope)
    except TempSpaceError:
        raise
    except Exception:  # whatever the standard pickler cannot do, cloudpickle may
        return _dump(ScopedPickler, obj, scope)


def _dump(
    kind: type[ScopedPickler] | type[_PlainScopedPickler], obj: Any, scope: SharingScope
) -> tuple[bytes, set[int]]:
    with io.BytesIO() as file:
        pickler = kind(file, scope)
        pickler.dump(obj)
        return file.getvalue(), pickler.tokens


def pickle_task(
    fn: Any,
    args: Sequence[Any],
    kwargs: Mapping[str, Any] | None,
    scope: SharingScope | None,
    label: str,
) -> tuple[bytes, set[int]]:
    """A task's payload and the tokens it needs; :class:`TaskPicklingError` if it does not
    pickle (its definitions are pickled now too, so that failures surface in ``submit``)."""
    try:
        task_tuple = (fn, tuple(args), dict(kwargs or {}))
        if scope is None:
            return cloudpickle.dumps(task_tuple, protocol=5), set()
        payload, tokens = dumps_scoped(task_tuple, scope)
        for token in tokens:
            scope.payload(token)
        return payload, tokens
    except TempSpaceError:
        raise  # already says what to do; not a pickling problem
    except Exception as error:
        raise TaskPicklingError(
            f"the task {label} could not be pickled to send it to a worker: {error}"
        ) from error
