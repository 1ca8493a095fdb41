"""The object store: a Memory cache on S3 (or any fsspec URL) shared by a whole cluster.

``Memory("s3://bucket/prefix")`` - and ``gs://``, ``az://``, ``memory://``... - keeps its
entries as objects, so every machine that can reach the bucket shares one cache; no shared
POSIX file system is needed. Credentials and endpoints come through
``backend_options={"storage_options": {...}}`` (fsspec's convention) or the engine's own
environment variables (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ...). ``file://`` URLs go to
the local store, which is the better store for local folders.

Layout under ``<prefix>/forklift/`` (the local store's, with objects for folders)::

    <module parts>/<function>/function.json         the function's record (code fingerprint)
    <module parts>/<function>/code-<version>/
        <key[:2]>/<key>.fkl                          one entry: ONE object (header, metadata,
                                                     the result in forklift's format)
        <key[:2]>/<key>.seen                         empty; its date is the entry's last access
        .leases/<key>                                single-flight leases (see .leases)

Guarantees, and how object storage gives them:

* **Whole or nothing.** An entry is one object, written by one ``PutObject`` (or one
  multipart upload, visible only once completed): readers see all of it or none. A worker
  killed mid-write leaves nothing visible (its unfinished multipart parts are removed by the
  bucket's ``AbortIncompleteMultipartUpload`` lifecycle rule; docs/distributed.md).
* **Computed once.** Entries are written with ``If-None-Match: *``, so two writers of one key
  leave the first entry; and a lease per key (:mod:`.leases`) makes racing machines wait
  for one computation instead of all computing.
* **Damage is seen.** An entry is read with ``load(verify=True)``, as the local store reads
  its files: checksums cover every byte; a damaged or truncated object is a
  :class:`~forklift.errors.CacheEntryDamagedError`, which Memory reports as a
  :class:`~forklift.errors.CacheWarning` and recomputes.
* **Never breaks the run.** An unreachable or read-only bucket is one CacheWarning, then
  the function runs uncached (:mod:`.outage`); ``strict=True`` makes it an error.

Requests per operation (the hit path is what the design optimises): a hit on a result up to
``part_size`` (8 MiB) is one ranged ``GET`` plus one ``PUT`` of its ``.seen`` marker; a
larger result fetches its other parts in parallel into an unnamed local temporary file
(never two copies in memory), then loads from it. A miss is a ``GET`` (404), the lease
(``PUT``), the entry (``PUT``, or a parallel multipart upload) and the lease's ``DELETE``.
Listing for ``reduce_size``, limits and the CLI lists each ``<key[:2]>`` shard prefix
separately, 16 at a time: a million entries are 256 prefixes of ~8 pages each, listed in
parallel instead of 2,000 pages one after the other. (That gain is latency-bound storage's;
on moto's loopback server, CPU-bound, 3,000 entries list in 4.6 s sharded against 3.6 s as
one listing - measured, medians of 4 - and a million entries were not tried.)

Last access has the server's resolution (S3's dates are whole seconds), so LRU eviction
orders entries used within the same second arbitrarily. ``mmap_mode`` does not apply:
entries load into memory.

Threat model. Loading an entry unpickles it, so **whoever can write the prefix can run code
in every process that reads the cache**, exactly as for a cache folder. forklift cannot
inspect bucket policies; grant write access to the cluster's own identity only. For a
bucket others can write, ``backend_options={"allowed_globals": [...]}`` loads entries with
forklift's restricted decoder (:func:`forklift.load`'s ``allowed_globals``): nothing outside
the list is imported. Integrity against accidents is the checksums' job in either mode.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any

from forklift.cache.stores.base import (
    CallId,
    ItemInfo,
    ItemLock,
    StoreBackendBase,
)
from forklift.cache.stores.leases import Lease
from forklift.cache.stores.object_client import ObjectClient, ObjectInfo, open_client, split_url
from forklift.cache.stores.object_layout import (
    HEADER,
    encode_header,
    entry_item,
    entry_sizes,
    items_of,
)
from forklift.cache.stores.object_options import StoreOptions
from forklift.cache.stores.outage import OutageGuard
from forklift.errors import CacheEntryDamagedError, ConfigurationError

__all__ = ["OBJECT_STORE", "ObjectStore", "StoreOptions", "route"]

OBJECT_STORE = "objects"
_ROOT = "forklift"
_RECORD = "function.json"
_VERSION_PREFIX = "code-"
_METADATA_READ = 64 * 1024
_LISTING_CONCURRENCY = 16
_FRESH_STAMPS = 1000


def route(location: str | None, backend: str) -> tuple[str | None, str]:
    """The (location, store name) ``Memory(location, backend)`` opens: URLs go to the object
    store (``file://`` to the local store, as a path); everything else is unchanged."""
    url = None if location is None else split_url(location)
    if backend == "local" and url is not None and url[0] == "file":
        return url[1], backend
    if backend != OBJECT_STORE and (backend != "local" or url is None):
        return location, backend
    return location, OBJECT_STORE


class ObjectStore(StoreBackendBase):
    """Cache entries as objects in an fsspec filesystem (see the module docstring)."""

    def __init__(self) -> None:
        self.location = ""
        self.root = ""
        self.options = StoreOptions()
        self._backend_options: dict[str, Any] = {}
        self._client: ObjectClient | None = None
        self._guard = OutageGuard("", False, 0.0)
        # Stamps seen in the response of a load, for the entry_stamp call that follows it.
        self._fresh_stamps: dict[str, object] = {}

    def configure(
        self, location: str, verbose: int = 0, backend_options: dict[str, Any] | None = None
    ) -> None:
        self.options = StoreOptions.parse(backend_options)
        self._backend_options = dict(backend_options or {})
        self.location = str(location)
        self._client, path = open_client(self.location, self.options.storage_options)
        self.root = f"{path}/{_ROOT}"
        self._guard = OutageGuard(self.location, self.options.strict, self.options.retry_after)

    def __reduce__(self) -> tuple[Any, ...]:
        # Workers rebuild the store from its location and options (not its connections).
        return (reopen, (self.location, self._backend_options))

    @property
    def client(self) -> ObjectClient:
        if self._client is None:
            raise ConfigurationError("the object store was not configured with a location")
        return self._client

    # -- paths -----------------------------------------------------------------------------
    def function_dir(self, function: tuple[str, ...]) -> str:
        if not function or not all(map(_is_plain, function)):
            raise ConfigurationError(
                f"cache path parts {function!r} would leave the cache at {self.location}; "
                "give plain names"
            )
        return f"{self.root}/{'/'.join(function)}"

    def version_dir(self, function: tuple[str, ...], version: str) -> str:
        if not _is_plain(version):
            raise ConfigurationError(f"code version {version!r} cannot name a cache folder")
        return f"{self.function_dir(function)}/{_VERSION_PREFIX}{version}"

    def entry_path(self, call_id: CallId, suffix: str = ".fkl") -> str:
        key = call_id.key
        if len(key) < 2 or not _is_plain(key):
            raise ConfigurationError(f"call key {key!r} cannot name a cache entry")
        return f"{self.version_dir(call_id.function, call_id.version)}/{key[:2]}/{key}{suffix}"

    # -- entries -----------------------------------------------------------------------------
    def load_item(self, call_id: CallId, mmap_mode: str | None = None) -> Any:
        path = self.entry_path(call_id)
        part = self.options.part_size
        if not self._guard.up():
            raise KeyError(call_id)
        try:
            first, info = self.client.get_with_info(path, 0, part)
            if info is not None:  # Memory asks for the stamp next: spare it a HEAD
                if len(self._fresh_stamps) > _FRESH_STAMPS:
                    self._fresh_stamps.clear()
                self._fresh_stamps[path] = info.stamp()
            metadata_size, result_size = entry_sizes(first, self._url(path))
            start = HEADER + metadata_size
            total = start + result_size
            if len(first) > total or (len(first) < total and len(first) < part):
                raise CacheEntryDamagedError(
                    f"cannot read cache entry {self._url(path)}: it holds {len(first)} bytes, "
                    f"its header says {total}"
                )
            if len(first) == total:
                return self._decode(io.BytesIO(memoryview(first)[start:]), path)
            with tempfile.TemporaryFile() as spool:
                spool.write(first)
                spool.flush()
                del first
                self.client.download(path, spool, part, total, part, self.options.concurrency)
                spool.seek(start)
                return self._decode(spool, path)
        except FileNotFoundError:
            raise KeyError(call_id) from None
        except OSError as error:
            self._guard.failed(error)
            raise KeyError(call_id) from None
        finally:
            self._guard.recovered()

    def _decode(self, source: IO[bytes], path: str) -> Any:
        try:
            from forklift.persist import load  # on first use: see _persist_dump

            return load(source, verify=True, allowed_globals=self.options.allowed_globals)
        except Exception as error:
            raise CacheEntryDamagedError(
                f"cannot read cache entry {self._url(path)}: {error}"
            ) from error

    def dump_item(
        self, call_id: CallId, value: Any, metadata: dict[str, Any], compress: Any = False
    ) -> int:
        path = self.entry_path(call_id)
        part = self.options.part_size
        meta = json.dumps(metadata, default=repr).encode()
        with tempfile.SpooledTemporaryFile(max_size=part) as spool:
            spool.write(encode_header(len(meta), 0) + meta)
            _persist_dump(value, spool, compress=compress)
            size = spool.tell()
            spool.seek(0)
            spool.write(encode_header(len(meta), size - HEADER - len(meta)))
            if not self._guard.writable():
                return 0
            try:
                if size <= part:
                    spool.seek(0)
                    self.client.put(path, spool.read(), create=True)
                else:
                    spool.flush()
                    self.client.upload(path, spool, size, part, self.options.concurrency)
            except FileExistsError:
                pass  # another machine stored this key first; its entry is as good
            except OSError as error:
                self._guard.failed(error)
                return 0
        return size

    def contains_item(self, call_id: CallId) -> bool:
        return self._info(self.entry_path(call_id)) is not None

    def get_metadata(self, call_id: CallId) -> dict[str, Any] | None:
        path = self.entry_path(call_id)
        if not self._guard.up():
            return None
        try:
            head = self.client.get(path, 0, _METADATA_READ)
            metadata_size, _ = entry_sizes(head, self._url(path))
            if HEADER + metadata_size > len(head):
                head = self.client.get(path, 0, HEADER + metadata_size)
            data = json.loads(head[HEADER : HEADER + metadata_size])
        except (OSError, CacheEntryDamagedError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def clear_item(self, call_id: CallId) -> None:
        paths = [self.entry_path(call_id), self.entry_path(call_id, ".seen")]
        self._write(lambda: self.client.delete(paths))

    def entry_stamp(self, call_id: CallId) -> object | None:
        path = self.entry_path(call_id)
        fresh = self._fresh_stamps.pop(path, None)
        if fresh is not None:
            return fresh  # the stamp of the very bytes just loaded
        info = self._info(path)
        return None if info is None else info.stamp()

    def item_info(self, call_id: CallId) -> ItemInfo | None:
        entry = self._info(self.entry_path(call_id))
        if entry is None:
            return None
        seen = self._info(self.entry_path(call_id, ".seen"))
        return entry_item(call_id, entry, seen)

    def touch(self, call_id: CallId) -> None:
        path = self.entry_path(call_id, ".seen")
        if not self._guard.writable():
            return
        try:
            self.client.put(path, b"")
        except PermissionError:
            pass  # a read-only cache still serves hits; its writes warn
        except OSError as error:
            self._guard.failed(error)

    def lock_item(self, call_id: CallId, timeout: float | None) -> ItemLock:
        version_dir = self.version_dir(call_id.function, call_id.version)
        self.entry_path(call_id)  # checks the key
        if not self._guard.writable():
            return _NotHeld()
        return Lease(
            self.client,
            f"{version_dir}/.leases/{call_id.key}",
            timeout,
            self.options.lease_seconds,
            self._guard.failed,
        )

    # -- functions ---------------------------------------------------------------------------
    def read_function_record(self, function: tuple[str, ...]) -> dict[str, Any] | None:
        path = f"{self.function_dir(function)}/{_RECORD}"
        if not self._guard.up():
            return None
        try:
            data = json.loads(self.client.get(path))
        except FileNotFoundError:
            return None
        except OSError as error:
            self._guard.failed(error)
            return None
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def write_function_record(self, function: tuple[str, ...], record: dict[str, Any]) -> None:
        path = f"{self.function_dir(function)}/{_RECORD}"
        data = json.dumps(record, indent=1).encode()
        self._write(lambda: self.client.put(path, data))

    def drop_other_versions(self, function: tuple[str, ...], keep: str) -> int:
        folder = self.function_dir(function)
        dropped = 0
        for name, is_folder in self._children(folder):
            if is_folder and name.startswith(_VERSION_PREFIX) and name != f"code-{keep}":
                version_dir = f"{folder}/{name}"
                listed = self._list(lambda path=version_dir: self.client.find(path))
                dropped += sum(1 for info in listed if info.path.endswith(".fkl"))
                self._write(lambda path=version_dir: self.client.delete_tree(path))
        return dropped

    def clear_path(self, function: tuple[str, ...]) -> None:
        folder = self.function_dir(function)
        self._write(lambda: self.client.delete_tree(folder))

    def clear(self) -> None:
        self._write(lambda: self.client.delete_tree(self.root))

    def iter_functions(self) -> Iterator[tuple[str, ...]]:
        """Every function with a record or with stored entries, walking "folders"."""
        pending: list[tuple[str, ...]] = [()]
        while pending:
            parts = pending.pop()
            listed = self._children("/".join((self.root, *parts)))
            if parts and any(
                name == _RECORD or (folder and name.startswith(_VERSION_PREFIX))
                for name, folder in listed
            ):
                yield parts
            pending.extend(
                (*parts, name)
                for name, folder in sorted(listed, reverse=True)
                if folder and _is_plain(name)
            )

    def get_items(self) -> list[ItemInfo]:
        shards: list[tuple[tuple[str, ...], str, str]] = []
        for function in self.iter_functions():
            folder = self.function_dir(function)
            for name, is_folder in self._children(folder):
                if not (is_folder and name.startswith(_VERSION_PREFIX)):
                    continue
                version_dir = f"{folder}/{name}"
                version = name.removeprefix(_VERSION_PREFIX)
                shards.extend(
                    (function, version, f"{version_dir}/{shard}")
                    for shard, shard_is_folder in self._children(version_dir)
                    if shard_is_folder and not shard.startswith(".")
                )
        listed = self._list(
            lambda: self.client.find_many([path for _, _, path in shards], _LISTING_CONCURRENCY)
        )
        return items_of(shards, listed)

    # -- failures ----------------------------------------------------------------------------
    def _info(self, path: str) -> ObjectInfo | None:
        if not self._guard.up():
            return None
        try:
            return self.client.info(path)
        except OSError as error:
            self._guard.failed(error)
            return None

    def _children(self, path: str) -> list[tuple[str, bool]]:
        return self._list(lambda: self.client.children(path))

    def _list(self, call: Any) -> list[Any]:
        if not self._guard.up():
            return []
        try:
            result: list[Any] = call()
        except OSError as error:
            self._guard.failed(error)
            return []
        return result

    def _write(self, call: Any) -> None:
        if not self._guard.writable():
            return
        try:
            call()
        except FileNotFoundError:
            pass
        except OSError as error:
            self._guard.failed(error)

    def _url(self, path: str) -> str:
        return f"{self.location.rstrip('/')}{path.removeprefix(self.root.removesuffix(_ROOT))}"


class _NotHeld(ItemLock):
    """The lock of a store that cannot be written: compute without the guarantee."""

    def __enter__(self) -> bool:
        return False

    def __exit__(self, *exc_info: object) -> None:
        return None


_reopened: dict[str, ObjectStore] = {}
_reopened_lock = threading.Lock()


def reopen(location: str, backend_options: dict[str, Any]) -> ObjectStore:
    """The store for ``location`` in this process, configured once (memoized functions are
    unpickled for every batch a worker runs; its outage state must outlive them)."""
    key = json.dumps([location, backend_options], sort_keys=True, default=repr)
    with _reopened_lock:
        store = _reopened.get(key)
        if store is None:
            store = _reopened[key] = ObjectStore()
            store.configure(location, 0, backend_options)
    return store


def _is_plain(part: str) -> bool:
    return (
        bool(part)
        and "/" not in part
        and "\\" not in part
        and "\x00" not in part
        and not part.startswith((".", _VERSION_PREFIX))
    )


def _persist_dump(value: Any, output: IO[bytes], compress: Any) -> None:
    # Persist is imported on first use, not with this module: memory.py imports this module
    # (for route) in every process using Memory, and a local cache's plain hits need no
    # persist (its readers cost tens of ms of a fresh process's start; see local.py).
    from forklift.persist import dump

    dump(value, output, compress=compress)
