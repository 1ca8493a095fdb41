"""Memoized functions: what ``Memory.cache`` returns, and the results it shelves.

The life of a call (see :meth:`MemorizedFunction._lookup_or_compute`)::

    arguments --bind, fill defaults, drop ignored--> key --> CallId(function, version, key)
        hit:  load, touch (for LRU), return
        miss: take the key's lock (other threads/processes computing it wait) -> look again
              (``contains_item``: one access, usually nobody stored it meanwhile) -> compute
              -> store atomically -> release -> return

Hot entries (:mod:`.hot_entries`): a small result (pickled size up to
:data:`~.hot_entries.HOT_ENTRY_BYTES`) that was loaded (or stored, where the store's
``keep_stored_hot`` says reading it back costs more than keeping it) is also kept in memory
as its pickled bytes. A later hit checks with one ``stat`` that
the entry on disk is still the same file (so clears, evictions and other processes' rewrites
are seen at once) and unpickles the bytes - a fresh object each time, as a load from disk
gives. Access times (for least-recently-used eviction) are then recorded at most once per
:data:`TOUCH_EVERY` seconds per entry and process: LRU order has that resolution.

The plain and the coroutine forms (:mod:`.memoized_async`) share every step but the two that
must wait - taking the key's lock and calling the function: :meth:`_look_up` (key, first
look), :meth:`_stored_meanwhile` (the second look, under the lock), :meth:`_computing` and
:meth:`_store`; each form strings them together around its own waits. Rejected: one
generator for the whole life of a call, driven by each form (it cost a generator per cached
call and added its frames to the tracebacks of the function's own errors).

A damaged entry is reported as a :class:`~forklift.errors.CacheWarning`, deleted and
recomputed; a cache that cannot be written (read-only, full disk) warns and still returns the
result. Nothing the function computed is ever lost to a cache problem.
"""

from __future__ import annotations

import functools
import logging
import pickle
import reprlib
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar

from forklift.cache.hot_entries import HotEntries, HotEntry, small_pickle
from forklift.cache.identity import FunctionIdentity, defined_at, main_script
from forklift.cache.keys import CallKeyMaker
from forklift.cache.records import forget_synced, identify_once, sync_function_record
from forklift.cache.shelved import MemorizedResult, NotMemorizedFunction, NotMemorizedResult
from forklift.cache.stores.base import CallId, StoreBackendBase
from forklift.errors import CacheEntryDamagedError, CacheWarning, HashingError
from forklift.progress.cache_messages import CacheReporter

__all__ = [
    "MemorizedFunction",
    "MemorizedResult",
    "NotMemorizedFunction",
    "NotMemorizedResult",
    "warn_cache_problem",
]

logger = logging.getLogger("forklift.cache")
P = ParamSpec("P")
R = TypeVar("R")
TOUCH_EVERY = 1.0
_SHORT = 40
_short = reprlib.Repr()
_short.maxstring = _SHORT
_short.maxother = _SHORT
_short.maxlong = _SHORT
_PLAIN_REPR = frozenset({int, float, str, bool, type(None)})


class MemorizedFunction(Generic[P, R]):
    """A function whose results are cached on disk. Call it like the function.

    Generic over the function's parameters and result, as ``delayed`` is: type checkers see
    ``memory.cache(f)`` take ``f``'s arguments and return its result type.
    """

    def __init__(
        self,
        function: Callable[P, R],
        store: StoreBackendBase,
        *,
        ignore: Iterable[str] = (),
        mmap_mode: str | None = None,
        compress: Any = False,
        verbose: int = 1,
        cache_validation_callback: Callable[[dict[str, Any]], bool] | None = None,
        version: str | None = None,
        input_files: Iterable[str] | Mapping[str, str] | None = None,
        wait_timeout: float | None = 600.0,
        after_store: Callable[[int], None] | None = None,
        script: str | None = None,
        location: str | None = None,
    ) -> None:
        self.func = function
        self.store = store
        self.ignore = list(ignore)
        self.mmap_mode = mmap_mode
        self.compress = compress
        self.verbose = verbose
        self.cache_validation_callback = cache_validation_callback
        self.version = version
        self.input_files = input_files
        self.wait_timeout = wait_timeout
        self._after_store = after_store
        self._keys = CallKeyMaker(function, self.ignore, input_files)
        self._identity: FunctionIdentity | None = None
        # The caller's script, for a __main__ function unpickled in a worker (see identity.py).
        self._script = script if script is not None else main_script()
        # Where the caller found it defined: a copy sent by value to a worker has no file.
        self._location = location
        self._reporter = CacheReporter(verbose)
        self._hot = HotEntries()
        functools.update_wrapper(self, function)

    # -- identity -----------------------------------------------------------------------------
    @property
    def identity(self) -> FunctionIdentity:
        """The function's identity and code fingerprint, computed once per process.

        Memoized functions are rebuilt each time they are unpickled (e.g. in every batch a
        worker receives), so both the fingerprint and the check of the function's record
        are remembered per process, not per object (see :mod:`forklift.cache.records`).
        """
        if self._identity is None:
            identity = identify_once(self.func, self.version, self._script, self._location)
            sync_function_record(self.store, identity, self.version, self._reporter)
            self._identity = identity
        return self._identity

    def _call_id(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[CallId, dict[str, Any]]:
        arguments, key = self._keys.call_key(args, kwargs)
        identity = self.identity
        return CallId(identity.path, identity.fingerprint, key), arguments

    def _describe(self, arguments: dict[str, Any]) -> str:
        described = _describe_arguments(arguments)
        inside = ", ".join(f"{name}={text}" for name, text in described.items())
        return f"{self.identity.qualname}({inside})"

    # -- the cached call ------------------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        value: R = self._lookup_or_compute(args, kwargs)[0]
        return value

    def _load(self, call_id: CallId, arguments: dict[str, Any]) -> tuple[bool, Any]:
        """(True, value) on a usable hit; (False, None) on a miss."""
        hot = self._hot.get(call_id.key)
        if hot is not None:
            if hot.stamp == self.store.entry_stamp(call_id) and (
                self.cache_validation_callback is None
                or self.cache_validation_callback(hot.metadata)
            ):
                now = time.monotonic()
                if now - hot.touched >= TOUCH_EVERY:
                    hot.touched = now
                    self.store.touch(call_id)
                value = pickle.loads(hot.payload)
                if self.verbose >= 2:
                    self._reporter.loaded(self.identity.qualname, self._describe(arguments), 0.0)
                return True, value
            self._hot.forget(call_id.key)
        metadata: dict[str, Any] | None = None
        if self.cache_validation_callback is not None:
            metadata = self.store.get_metadata(call_id)
            if metadata is None:
                return False, None
            if not self.cache_validation_callback(metadata):
                self._reporter.expired(self.identity.qualname, self._describe(arguments))
                self.store.clear_item(call_id)
                return False, None
        started = time.perf_counter()
        try:
            found, value = self.store.find_item(call_id, self.mmap_mode)
            if not found:
                return False, None
        except CacheEntryDamagedError as error:
            warn_cache_problem(f"{error}; deleting it and recomputing {self._describe(arguments)}")
            self.store.clear_item(call_id)
            return False, None
        self.store.touch(call_id)
        if self.verbose >= 2:
            self._reporter.loaded(
                self.identity.qualname, self._describe(arguments), time.perf_counter() - started
            )
        self._remember(call_id, value, metadata)
        return True, value

    def _remember(self, call_id: CallId, value: Any, metadata: dict[str, Any] | None) -> None:
        """Keep a small result's pickled bytes for hits (see the module docstring)."""
        if self.mmap_mode is not None:
            return  # the caller asked for memory maps, which bytes in memory are not
        try:
            payload = small_pickle(value)
        except Exception:  # not keeping it hot only costs speed
            return
        if payload is None:
            return
        stamp = self.store.entry_stamp(call_id)
        if stamp is None:
            return
        if metadata is None and self.cache_validation_callback is not None:
            metadata = self.store.get_metadata(call_id)
        self._hot.remember(call_id.key, HotEntry(stamp, payload, metadata or {}))

    def _lookup_or_compute(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, CallId | None]:
        call_id, arguments, found, value = self._look_up(args, kwargs)
        if call_id is None:  # arguments that cannot be hashed: computed without the cache
            return self.func(*args, **kwargs), None
        if found:
            return value, call_id
        lock = self.store.lock_item(call_id, self.wait_timeout)
        with lock as held:
            found, value = self._stored_meanwhile(held, call_id, arguments)
            if found:
                return value, call_id
            value, _, stored = self._compute_and_store(call_id, arguments, args, kwargs)
            if stored:
                lock.done()
        return value, call_id

    def _look_up(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[CallId | None, dict[str, Any], bool, Any]:
        """The first look, without the lock: ``(call_id, arguments, found, value)``.
        ``call_id`` is None (warned) when the arguments cannot be hashed."""
        try:
            # _call_id's steps, one frame fewer on every call (and CallId's __new__, a
            # Python function, skipped).
            arguments, key = self._keys.call_key(args, kwargs)
            identity = self._identity or self.identity
            call_id = tuple.__new__(CallId, (identity.path, identity.fingerprint, key))
        except HashingError as error:
            # stacklevel: this frame, the form's lookup and its __call__ lie between the
            # warning and the caller's line.
            warn_cache_problem(
                f"the arguments of {self.identity.qualname}() cannot be hashed ({error}); "
                "computing it without the cache - pass such arguments in ignore=[...] or "
                "give them a picklable form",
                stacklevel=5,
            )
            return None, {}, False, None
        found, value = self._load(call_id, arguments)
        return call_id, arguments, found, value

    def _stored_meanwhile(
        self, held: bool, call_id: CallId, arguments: dict[str, Any]
    ) -> tuple[bool, Any]:
        """The second look, once the key's lock is ``held``: someone may have stored the
        result while we waited (a cheap look first: usually nobody did)."""
        if held and self.store.contains_item(call_id):
            return self._load(call_id, arguments)
        return False, None

    def _computing(self, arguments: dict[str, Any]) -> float:
        """Say that the call is computed (if verbose); its start, for :meth:`_store`."""
        if self._reporter.verbose >= 1:  # describing the call costs more than a quiet miss
            self._reporter.computing(self.identity.qualname, self._describe(arguments))
        return time.perf_counter()

    def _compute_and_store(
        self,
        call_id: CallId,
        arguments: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[Any, dict[str, Any], bool]:
        """Compute the call and store its value: ``(value, metadata, stored)``."""
        started = self._computing(arguments)
        value = self.func(*args, **kwargs)
        return value, *self._store(call_id, arguments, value, started)

    def _store(
        self, call_id: CallId, arguments: dict[str, Any], value: Any, started: float
    ) -> tuple[dict[str, Any], bool]:
        """Store a computed ``value`` (computing began at ``started``); its metadata and
        whether it was stored."""
        duration = time.perf_counter() - started
        metadata = {
            "duration": duration,
            "time": time.time(),
            "input_args": _describe_arguments(arguments),
        }
        stored = True
        size = 0
        try:
            size = self.store.dump_item(call_id, value, metadata, compress=self.compress)
        except OSError as error:
            stored = False
            warn_cache_problem(
                f"could not store the result of {self._describe(arguments)} in the cache at "
                f"{self.store.location} ({error}); returning it uncached"
            )
        except Exception as error:  # e.g. a result that cannot be pickled
            stored = False
            warn_cache_problem(
                f"could not store the result of {self._describe(arguments)}: {error!r}; "
                "returning it uncached"
            )
        if self._reporter.verbose >= 1:
            self._reporter.computed(self.identity.qualname, duration, stored)
        if stored:
            if self.store.keep_stored_hot:
                self._remember(call_id, value, metadata)
            if self._after_store is not None:
                self._after_store(size)
        return metadata, stored

    # -- the rest of the memoized-function API --------------------------------------------------
    def call(self, *args: P.args, **kwargs: P.kwargs) -> tuple[R, dict[str, Any]]:
        """Compute (even if cached), store, and return ``(output, metadata)``."""
        call_id, arguments = self._call_id(args, kwargs)
        with self.store.lock_item(call_id, self.wait_timeout):
            self.store.clear_item(call_id)
            value, metadata, stored = self._compute_and_store(call_id, arguments, args, kwargs)
            return value, {**metadata, "stored": stored}

    def call_and_shelve(
        self, *args: P.args, **kwargs: P.kwargs
    ) -> MemorizedResult | NotMemorizedResult:
        """Make sure the result is cached and return a handle to it instead of the value."""
        value, call_id = self._lookup_or_compute(args, kwargs)
        if call_id is None:  # uncacheable arguments: nothing to shelve
            return NotMemorizedResult(value)
        return MemorizedResult(self.store, call_id, self.mmap_mode, self.identity.display_name)

    def check_call_in_cache(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """True if this call's result is cached (and still valid); computes nothing."""
        call_id, _ = self._call_id(args, kwargs)
        if not self.store.contains_item(call_id):
            return False
        if self.cache_validation_callback is None:
            return True
        metadata = self.store.get_metadata(call_id)
        return metadata is not None and bool(self.cache_validation_callback(metadata))

    def clear(self, warn: bool = True) -> None:
        """Delete every cached result of this function."""
        if warn and self.verbose >= 1:
            logger.info("clearing the cache of %s", self.identity.display_name)
        identity = self.identity
        self.store.clear_path(identity.path)
        forget_synced(self.store, identity)
        self._identity = None

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # Used as a method decorator: bind like a function so ``self`` becomes an argument.
        if instance is None:
            return self
        return functools.partial(self, instance)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                type(self),
                self.func,
                self.store,
                {
                    "ignore": self.ignore,
                    "mmap_mode": self.mmap_mode,
                    "compress": self.compress,
                    "verbose": self.verbose,
                    "cache_validation_callback": self.cache_validation_callback,
                    "version": self.version,
                    "input_files": self.input_files,
                    "wait_timeout": self.wait_timeout,
                    # "" (not None): the caller ran no script; a worker must not ask its own
                    # __main__, which may be the worker program's (dask's, ray's).
                    "script": self._script or "",
                    "location": self._location or defined_at(self.func),
                },
            ),
        )

    def __repr__(self) -> str:
        return f"MemorizedFunction(func={self.func!r}, location={self.store.location!r})"


def _rebuild(
    kind: type[MemorizedFunction[Any, Any]],
    function: Callable[..., Any],
    store: StoreBackendBase,
    options: dict[str, Any],
) -> MemorizedFunction[Any, Any]:
    return kind(function, store, **options)


def _describe_arguments(arguments: dict[str, Any]) -> dict[str, str]:
    """Each argument's repr cut to 40 characters, as the entry's metadata records them.
    Scalars whose repr is short enough are that repr, as ``reprlib`` would give it, without
    its dispatch (3 µs of each miss, per argument); in one frame, not one per argument."""
    described = {}
    for name, value in arguments.items():
        if type(value) in _PLAIN_REPR:
            text = repr(value)
            if len(text) <= _SHORT:
                described[name] = text
                continue
        described[name] = _short.repr(value)
    return described


def warn_cache_problem(message: str, stacklevel: int = 4) -> None:
    """Report a cache problem Memory worked around, once: through ``warnings`` only, so a
    warnings filter silences it entirely (it used to go to ``logging`` as well)."""
    warnings.warn(message, CacheWarning, stacklevel=stacklevel)
