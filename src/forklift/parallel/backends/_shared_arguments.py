"""Large arguments of cluster batches, shared once instead of pickled with every batch.

Large arguments (arrays, bytes) are taken out of a batch before it is pickled and replaced by
a :class:`Placeholder`; the value itself goes to the cluster once, by the engine's own "put it
on the cluster" (``Client.scatter``, ``ray.put``), and the worker puts it back (see
:mod:`._remote`). The same object passed to many tasks is shared once per backend lifetime
(one ``Parallel`` call, or one ``with Parallel(...)`` block) and every batch refers to it by
key, while objects that no batch in flight needs any more are let go beyond a memory budget.

Imports neither dask nor ray, and never the engine.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from forklift._support.sizes import parse_bytes
from forklift.errors import ConfigurationError
from forklift.parallel.backends.base import Call

__all__ = [
    "DEFAULT_SHARE_THRESHOLD",
    "LargeArguments",
    "Placeholder",
    "nbytes_of",
    "parse_share_options",
]

DEFAULT_SHARE_THRESHOLD = 1024 * 1024  # 1 MiB: below it, pickling with the batch is cheaper
# Shared objects no batch in flight uses are kept up to this many bytes, for reuse.
DEFAULT_KEEP_BYTES = 256 * 1024 * 1024
Handle = TypeVar("Handle")


@dataclasses.dataclass(frozen=True)
class Placeholder:
    """Stands in a shipped batch for a large argument shared separately under ``key``."""

    key: str


def nbytes_of(value: object) -> int | None:
    """The size of ``value``'s data if it is a buffer-like object (array, bytes), else None.

    Only types that declare their size are measured: walking arbitrary objects to estimate a
    size would cost more than it saves.
    """
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, memoryview):
        return value.nbytes
    # numpy arrays, pandas Series/Index, pyarrow arrays... all expose ``nbytes``. Look it up on
    # the type first so that objects answering every attribute (mocks, proxies) are skipped.
    if getattr(type(value), "nbytes", None) is None:
        return None
    try:
        size = value.nbytes  # type: ignore[attr-defined]
    except Exception:  # a broken property must not break dispatch; just do not share
        return None
    return size if isinstance(size, int) and not isinstance(size, bool) else None


def parse_share_options(
    engine: str, threshold: object, always: object
) -> tuple[int | None, list[Any]]:
    """Validate a backend's sharing parameters: ``(threshold in bytes or None, forced list)``.

    ``threshold`` None or False turns automatic sharing off; ``always`` True means "on, with
    the threshold", False means off altogether, and a list names objects shared whatever
    their size (joblib's ``scatter=[...]``).
    """
    forced: list[Any] = []
    if always is False:
        return None, forced
    if isinstance(always, list | tuple):
        forced = list(always)
    elif always is not True and always is not None:
        raise ConfigurationError(
            f"the {engine} backend's scatter must be True, False or a list of objects to share "
            f"with every task, got {always!r}"
        )
    if threshold is None or threshold is False:
        return None, forced
    if isinstance(threshold, bool):
        raise ConfigurationError(
            f"the {engine} backend's scatter_threshold must be a size such as '1M' or None"
        )
    if not isinstance(threshold, int | float | str):
        raise ConfigurationError(
            f"the {engine} backend's scatter_threshold must be a size such as '1M' (or an int "
            f"number of bytes), or None to share nothing automatically; got {threshold!r}"
        )
    return parse_bytes(threshold, name="scatter_threshold"), forced


@dataclasses.dataclass
class _Shared(Generic[Handle]):
    value: Any  # held so that its id() is not reused while the entry lives
    key: str
    handle: Handle
    nbytes: int
    users: int = 0  # batches in flight that refer to it
    forced: bool = False


class LargeArguments(Generic[Handle]):
    """Replaces large arguments of calls by placeholders, sharing each object once.

    ``share(value)`` puts ``value`` on the cluster and returns the engine's handle for it.
    Objects are recognised by identity, so a value passed to every task is shared once.

    Memory stays bounded when every task brings a large object of its own (a generator of
    arrays): an entry is kept while a batch in flight uses it (the backend calls
    :meth:`release` when a batch finishes); unused entries stay cached, most recent first,
    up to ``keep_bytes`` - enough to avoid sharing one object again when the next batch that
    uses it is a moment late - and older ones are dropped, which frees them on the cluster.
    Objects named in ``always`` are kept for the whole lifetime.
    """

    def __init__(
        self,
        share: Callable[[Any], Handle],
        threshold: int | None,
        always: Iterable[Any] = (),
        keep_bytes: int = DEFAULT_KEEP_BYTES,
    ) -> None:
        self._share = share
        self._threshold = threshold
        self._forced = list(always)  # keeps the ids below valid
        self._always = {id(value) for value in self._forced}
        self._keep_bytes = keep_bytes
        self._shared: dict[int, _Shared[Handle]] = {}
        self._by_key: dict[str, int] = {}
        self._unused: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._unused_bytes = 0
        self._lock = threading.Lock()
        self.n_shared = 0

    @property
    def active(self) -> bool:
        return self._threshold is not None or bool(self._always)

    @property
    def n_held(self) -> int:
        """How many shared objects are held now (in use, or cached for reuse)."""
        with self._lock:
            return len(self._shared)

    def _size_if_large(self, value: object) -> int | None:
        if id(value) in self._always:
            return nbytes_of(value) or 0
        if self._threshold is None:
            return None
        size = nbytes_of(value)
        return size if size is not None and size >= self._threshold else None

    def _placeholder(self, value: Any, nbytes: int, used: dict[str, Handle]) -> Placeholder:
        with self._lock:
            entry = self._shared.get(id(value))
            if entry is None:
                key = f"forklift-arg-{uuid.uuid4().hex}"
                entry = _Shared(
                    value, key, self._share(value), nbytes, forced=id(value) in self._always
                )
                self._shared[id(value)] = entry
                self._by_key[key] = id(value)
                self.n_shared += 1
            if entry.key not in used:
                entry.users += 1
                if id(value) in self._unused:
                    del self._unused[id(value)]
                    self._unused_bytes -= entry.nbytes
        used[entry.key] = entry.handle
        return Placeholder(entry.key)

    def _swap(self, value: Any, used: dict[str, Handle]) -> Any:
        nbytes = self._size_if_large(value)
        return value if nbytes is None else self._placeholder(value, nbytes, used)

    def extract(self, calls: list[Call]) -> tuple[list[Call], dict[str, Handle]]:
        """``calls`` with large top-level arguments replaced, and the handles they need.

        Call :meth:`release` with the returned keys when the batch has finished.
        """
        used: dict[str, Handle] = {}
        if not self.active:
            return calls, used
        extracted: list[Call] = []
        for function, args, kwargs in calls:
            # Most calls have nothing large: keep their own tuple and dict then.
            new_args = args
            if any(self._size_if_large(value) is not None for value in args):
                new_args = tuple(self._swap(value, used) for value in args)
            new_kwargs = kwargs
            if any(self._size_if_large(value) is not None for value in kwargs.values()):
                new_kwargs = {name: self._swap(value, used) for name, value in kwargs.items()}
            extracted.append((function, new_args, new_kwargs))
        return extracted, used

    def release(self, keys: Iterable[str]) -> None:
        """A batch that used ``keys`` has finished; drop what is no longer worth keeping."""
        with self._lock:
            for key in keys:
                object_id = self._by_key.get(key)
                entry = None if object_id is None else self._shared.get(object_id)
                if entry is None or object_id is None:
                    continue
                entry.users -= 1
                if entry.users <= 0 and not entry.forced:
                    self._unused[object_id] = None
                    self._unused_bytes += entry.nbytes
            while self._unused and self._unused_bytes > self._keep_bytes:
                object_id, _ = self._unused.popitem(last=False)
                dropped = self._shared.pop(object_id)
                del self._by_key[dropped.key]
                self._unused_bytes -= dropped.nbytes

    def clear(self) -> None:
        """Forget every shared object (the engine frees them once no handle refers to them)."""
        with self._lock:
            self._shared.clear()
            self._by_key.clear()
            self._unused.clear()
            self._unused_bytes = 0
