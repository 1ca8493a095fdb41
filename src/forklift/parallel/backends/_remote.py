"""What the cluster backends (dask, ray) share: shipping batches and sharing large arguments.

A batch bound for a cluster travels as cloudpickle bytes, so lambdas, closures and functions
defined in ``__main__`` work, and its outcome comes back as bytes too - a task's error that
cannot be pickled becomes a readable error instead of a failure inside the engine's
serializer. Large arguments (arrays, bytes) are taken out of the batch before it is pickled::

    caller                                          cluster worker
    calls --LargeArguments.extract--> calls with Placeholder(key)  --+
       |                                                             |  pack_batch (bytes)
       +-- share(value) once per value -> engine handle (future/ref) |
                                            engine resolves handles  v
                                            run_packed: Placeholder(key) -> value -> run_batch

``share`` is the engine's own "put it on the cluster once" (``Client.scatter``, ``ray.put``);
the same object passed to many tasks is shared once per backend lifetime (one ``Parallel``
call, or one ``with Parallel(...)`` block) and every batch refers to it by key.

This module imports neither dask nor ray, and never the engine.
"""

from __future__ import annotations

import dataclasses
import pickle
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import cloudpickle

from forklift._support.sizes import parse_bytes
from forklift.errors import ConfigurationError
from forklift.parallel.backends.base import Batch, BatchOutcome, Call, run_batch

__all__ = [
    "DEFAULT_SHARE_THRESHOLD",
    "LargeArguments",
    "Placeholder",
    "nbytes_of",
    "pack_batch",
    "parse_share_options",
    "run_packed",
    "unpack_outcome",
]

DEFAULT_SHARE_THRESHOLD = 1024 * 1024  # 1 MiB: below it, pickling with the batch is cheaper
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


class LargeArguments(Generic[Handle]):
    """Replaces large arguments of calls by placeholders, sharing each object once.

    ``share(value)`` puts ``value`` on the cluster and returns the engine's handle for it.
    Objects are remembered by identity while they are held here (holding them keeps their
    ``id`` from being reused), so a value passed to every task is shared once.
    """

    def __init__(
        self, share: Callable[[Any], Handle], threshold: int | None, always: Iterable[Any] = ()
    ) -> None:
        self._share = share
        self._threshold = threshold
        self._always = {id(value) for value in always}
        self._forced = list(always)  # keeps the ids above valid
        self._shared: dict[int, tuple[Any, str, Handle]] = {}
        self._lock = threading.Lock()
        self.n_shared = 0

    @property
    def active(self) -> bool:
        return self._threshold is not None or bool(self._always)

    def _is_large(self, value: object) -> bool:
        if id(value) in self._always:
            return True
        if self._threshold is None:
            return False
        size = nbytes_of(value)
        return size is not None and size >= self._threshold

    def _placeholder(self, value: Any, used: dict[str, Handle]) -> Placeholder:
        with self._lock:
            entry = self._shared.get(id(value))
            if entry is None:
                key = f"forklift-arg-{uuid.uuid4().hex}"
                entry = (value, key, self._share(value))
                self._shared[id(value)] = entry
                self.n_shared += 1
        used[entry[1]] = entry[2]
        return Placeholder(entry[1])

    def _swap(self, value: Any, used: dict[str, Handle]) -> Any:
        return self._placeholder(value, used) if self._is_large(value) else value

    def extract(self, calls: list[Call]) -> tuple[list[Call], dict[str, Handle]]:
        """``calls`` with large top-level arguments replaced, and the handles they need."""
        used: dict[str, Handle] = {}
        if not self.active:
            return calls, used
        extracted: list[Call] = []
        for function, args, kwargs in calls:
            new_args = args
            if any(self._is_large(value) for value in args):
                new_args = tuple(self._swap(value, used) for value in args)
            new_kwargs = kwargs
            if any(self._is_large(value) for value in kwargs.values()):
                new_kwargs = {name: self._swap(value, used) for name, value in kwargs.items()}
            extracted.append((function, new_args, new_kwargs))
        return extracted, used

    def handles(self) -> list[Handle]:
        with self._lock:
            return [handle for _, _, handle in self._shared.values()]

    def clear(self) -> None:
        """Forget every shared object (the engine frees them once no handle refers to them)."""
        with self._lock:
            self._shared.clear()


def pack_batch(batch: Batch, calls: list[Call]) -> bytes:
    """``batch`` with ``calls`` in place of its own, as bytes for the trip to a worker."""
    shipped = dataclasses.replace(batch, calls=calls)
    return bytes(cloudpickle.dumps(shipped))


def run_packed(payload: bytes, values: Mapping[str, Any], worker_of: str) -> bytes:
    """Worker side: unpack a batch, put the shared values back, run it, pack the outcome."""
    batch: Batch = pickle.loads(payload)
    if values:
        batch.calls = [
            (
                function,
                tuple(values[a.key] if isinstance(a, Placeholder) else a for a in args),
                {
                    name: values[v.key] if isinstance(v, Placeholder) else v
                    for name, v in kwargs.items()
                },
            )
            for function, args, kwargs in batch.calls
        ]
    outcome = run_batch(batch, worker_of=worker_of)
    try:
        return bytes(cloudpickle.dumps(outcome))
    except Exception as error:
        # The result or the error does not pickle: report that, with the task's traceback.
        failure = BatchOutcome(
            [],
            error=RuntimeError(f"a task's result or error could not be pickled: {error!r}"),
            error_traceback=outcome.error_traceback,
            error_task=max(outcome.error_task, 0),
            started=outcome.started,
            finished=outcome.finished,
            worker=outcome.worker,
        )
        return bytes(cloudpickle.dumps(failure))


def unpack_outcome(payload: bytes) -> BatchOutcome:
    outcome: BatchOutcome = pickle.loads(payload)
    return outcome
