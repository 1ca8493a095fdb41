"""The few object-storage operations the object store needs, over any fsspec filesystem.

:class:`ObjectClient` is the boundary between forklift and fsspec (s3fs, gcsfs, adlfs, the
in-memory filesystem): every third-party error is translated here into one of four Python
errors, so the store above never sees botocore or aiohttp exceptions::

    FileNotFoundError   the object is not there
    FileExistsError     a conditional write lost: the object exists (create) or changed (CAS)
    PermissionError     the credentials may not do this (a read-only bucket)
    OSError             anything else: the storage is unreachable or failing

What "conditional" means per filesystem:

============  ==========================================  =============================
operation     S3 (AWS, MinIO, R2, Ceph, moto)              other fsspec filesystems
============  ==========================================  =============================
create        ``PutObject`` with ``If-None-Match: *``       ``pipe_file(mode="create")``
              (also on ``CompleteMultipartUpload``)         (native where the filesystem
                                                            has it, else check then write)
replace if    ``PutObject`` with ``If-Match: <etag>``        check the etag, then write
delete if     ``DeleteObject`` with ``If-Match: <etag>``     check the etag, then delete
============  ==========================================  =============================

Large objects move in parts, in parallel, through a thread pool (fsspec's calls are
thread-safe; for async filesystems the threads only wait on its event loop): a download
writes each range at its offset in a local file as it arrives (``os.pwrite``), an S3 upload
reads each part from a local file as it is sent (``os.pread``). Memory holds at most
``concurrency`` parts, never a second copy of the object. (Rejected: ``fs.put_file`` - it
needs a named file, which a killed worker would leave behind; fsspec's ``open(path, "wb")``
- one part at a time.)

This module imports fsspec lazily: forklift without the ``s3`` extra still imports it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import functools
import os
import re
from collections.abc import Callable
from typing import IO, Any, TypeVar

from forklift.errors import MissingDependencyError

__all__ = ["ObjectClient", "ObjectInfo", "open_client", "split_url"]

T = TypeVar("T")
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")


def split_url(location: str) -> tuple[str, str] | None:
    """(protocol, rest) of an fsspec URL such as ``s3://bucket/prefix``; None for a path."""
    match = _URL.match(location)
    if match is None:
        return None
    return match.group(1).lower(), match.group(2)


class ObjectInfo:
    """What a listing or a ``HEAD`` tells about one object."""

    __slots__ = ("etag", "modified", "path", "size")

    def __init__(self, path: str, size: int, modified: float, etag: str | None) -> None:
        self.path, self.size, self.modified, self.etag = path, size, modified, etag

    def stamp(self) -> tuple[object, ...]:
        return (self.etag, self.size, self.modified)


def open_client(location: str, storage_options: dict[str, Any]) -> tuple[ObjectClient, str]:
    """A client for ``location`` (an fsspec URL) and the path of the location inside it."""
    try:
        import fsspec
    except ImportError as error:  # pragma: no cover - fsspec comes with every extra
        raise MissingDependencyError(
            f"Memory({location!r}) needs fsspec and the filesystem for its URL: "
            "pip install 'forklift[s3]' (or gcsfs, adlfs for gs:// and az://)"
        ) from error
    protocol, _ = split_url(location) or ("file", location)
    options = dict(storage_options)
    if protocol != "memory":
        # Listings must never be served from a cache: entries come and go under our feet.
        options.setdefault("use_listings_cache", False)
    try:
        fs = fsspec.filesystem(protocol, **options)
    except ImportError as error:
        extra = "s3" if protocol in ("s3", "s3a") else protocol
        raise MissingDependencyError(
            f"Memory({location!r}) needs the fsspec filesystem for {protocol}://: "
            f"pip install 'forklift[{extra}]' ({error})"
        ) from error
    path = fs._strip_protocol(location).rstrip("/")
    client_class = S3Client if hasattr(fs, "_call_s3") else ObjectClient
    return client_class(fs), path


class ObjectClient:
    """Object operations on one fsspec filesystem, with errors translated (module docstring)."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    # -- small objects ----------------------------------------------------------------------
    def get(self, path: str, start: int | None = None, end: int | None = None) -> bytes:
        return _translated(lambda: bytes(self.fs.cat_file(path, start=start, end=end)))

    def get_with_info(self, path: str, start: int, end: int) -> tuple[bytes, ObjectInfo | None]:
        """Bytes ``[start, end)`` and, where the response says, what a ``HEAD`` would."""
        return self.get(path, start, end), None

    def info(self, path: str) -> ObjectInfo | None:
        try:
            details = _translated(lambda: self.fs.info(path))
        except FileNotFoundError:
            return None
        if details.get("type") == "directory":
            return None
        return _object_info(path, details)

    def put(self, path: str, data: bytes, *, create: bool = False) -> str | None:
        """Write ``data``; with ``create``, only if nothing is there (else FileExistsError).
        Returns the new object's etag when the storage tells it."""
        mode = "create" if create else "overwrite"
        result = _translated(lambda: self.fs.pipe_file(path, data, mode=mode))
        return _etag_of(result) if isinstance(result, dict) else None

    def replace_if(self, path: str, data: bytes, etag: str | None) -> str | None:
        """Overwrite ``path`` only if its etag is still ``etag`` (else FileExistsError)."""
        now = self.info(path)
        if now is None or now.etag != etag:
            raise FileExistsError(f"{path} changed")
        return self.put(path, data)

    def delete_if(self, path: str, etag: str | None) -> None:
        now = self.info(path)
        if now is not None and now.etag == etag:
            self.delete([path])

    def delete(self, paths: list[str]) -> None:
        """Delete each of ``paths`` that exists."""
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                _translated(functools.partial(self.fs.rm_file, path))

    def delete_tree(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            _translated(lambda: self.fs.rm(path, recursive=True))

    # -- listings ---------------------------------------------------------------------------
    def children(self, path: str) -> list[tuple[str, bool]]:
        """(name, is_folder) of what is directly under ``path``; [] when nothing is."""
        try:
            listed = _translated(lambda: self.fs.ls(path, detail=True))
        except FileNotFoundError:
            return []
        prefix = path.rstrip("/") + "/"
        found = []
        for details in listed:
            name = str(details["name"]).rstrip("/")
            if name.startswith(prefix):
                found.append((name[len(prefix) :], details.get("type") == "directory"))
        return found

    def find(self, path: str) -> list[ObjectInfo]:
        """Every object below ``path``, at any depth."""
        try:
            listed = _translated(lambda: self.fs.find(path, detail=True))
        except FileNotFoundError:
            return []
        return [_object_info(name, details) for name, details in listed.items()]

    def find_many(self, paths: list[str], concurrency: int) -> list[ObjectInfo]:
        """Every object below each of ``paths``, listed ``concurrency`` prefixes at a time."""
        found: list[list[ObjectInfo]] = [[] for _ in paths]

        def list_one(index: int) -> None:
            found[index] = self.find(paths[index])

        _in_parallel(list_one, range(len(paths)), concurrency)
        return [info for listed in found for info in listed]

    # -- large objects ----------------------------------------------------------------------
    def download(
        self, path: str, target: IO[bytes], start: int, end: int, part: int, concurrency: int
    ) -> None:
        """Copy bytes ``[start, end)`` of ``path`` to the same offsets of ``target`` (a real
        file), ``part`` bytes per request, ``concurrency`` requests at a time."""
        descriptor = target.fileno()

        def fetch(offset: int) -> None:
            data = self.get(path, offset, min(offset + part, end))
            if len(data) != min(part, end - offset):
                raise OSError(f"{path} shrank while it was read")
            os.pwrite(descriptor, data, offset)

        _in_parallel(fetch, range(start, end, part), concurrency)

    def upload(self, path: str, source: IO[bytes], size: int, part: int, concurrency: int) -> None:
        """Create ``path`` from the first ``size`` bytes of ``source`` (a real file)."""
        if self.info(path) is not None:
            raise FileExistsError(path)
        descriptor = source.fileno()

        def write() -> None:
            with self.fs.open(path, "wb") as output:
                for offset in range(0, size, part):
                    output.write(os.pread(descriptor, min(part, size - offset), offset))

        _translated(write)


class S3Client(ObjectClient):
    """S3's own conditional requests and parallel multipart uploads (module docstring)."""

    def _call(self, method: str, path: str, **arguments: Any) -> Any:
        bucket, key, _ = self.fs.split_path(path)
        return _translated(lambda: self.fs.call_s3(method, Bucket=bucket, Key=key, **arguments))

    def get_with_info(self, path: str, start: int, end: int) -> tuple[bytes, ObjectInfo | None]:
        bucket, key, _ = self.fs.split_path(path)

        async def read() -> tuple[bytes, dict[str, Any]]:
            answer = await self.fs._call_s3(
                "get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}"
            )
            try:
                return bytes(await answer["Body"].read()), answer
            finally:
                answer["Body"].close()

        from fsspec.asyn import sync

        data, answer = _translated(lambda: sync(self.fs.loop, read))
        whole = str(answer.get("ContentRange", "")).rpartition("/")[2]
        size = int(whole) if whole.isdigit() else int(answer.get("ContentLength", len(data)))
        info = ObjectInfo(path, size, _timestamp(answer.get("LastModified")), _etag_of(answer))
        return data, info

    def put(self, path: str, data: bytes, *, create: bool = False) -> str | None:
        condition = {"IfNoneMatch": "*"} if create else {}
        return _etag_of(self._call("put_object", path, Body=data, **condition))

    def replace_if(self, path: str, data: bytes, etag: str | None) -> str | None:
        try:
            return _etag_of(self._call("put_object", path, Body=data, IfMatch=etag or "*"))
        except (FileNotFoundError, OSError) as error:
            if isinstance(error, PermissionError):
                raise
            raise FileExistsError(f"{path} changed") from error

    def delete_if(self, path: str, etag: str | None) -> None:
        try:
            self._call("delete_object", path, IfMatch=etag or "*")
        except PermissionError:
            raise
        except OSError:
            pass  # changed or gone: not ours to delete any more

    def delete(self, paths: list[str]) -> None:
        """One ``DeleteObjects`` request (S3 deletes missing keys without complaint)."""
        if not paths:
            return
        bucket = self.fs.split_path(paths[0])[0]
        keys = [{"Key": self.fs.split_path(path)[1]} for path in paths]
        _translated(
            lambda: self.fs.call_s3(
                "delete_objects", Bucket=bucket, Delete={"Objects": keys, "Quiet": True}
            )
        )

    def upload(self, path: str, source: IO[bytes], size: int, part: int, concurrency: int) -> None:
        descriptor = source.fileno()
        upload_id = self._call("create_multipart_upload", path)["UploadId"]
        etags: dict[int, str] = {}

        def send(number: int) -> None:
            offset = (number - 1) * part
            data = os.pread(descriptor, min(part, size - offset), offset)
            answer = self._call(
                "upload_part", path, PartNumber=number, UploadId=upload_id, Body=data
            )
            etags[number] = answer["ETag"]

        try:
            _in_parallel(send, range(1, (size + part - 1) // part + 1), concurrency)
            parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
            self._call(
                "complete_multipart_upload",
                path,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except BaseException:
            # If this fails, a bucket lifecycle rule removes the parts (docs/distributed.md).
            with contextlib.suppress(OSError):
                self._call("abort_multipart_upload", path, UploadId=upload_id)
            raise


def _in_parallel(work: Callable[[int], None], items: range, concurrency: int) -> None:
    if len(items) <= 1 or concurrency <= 1:
        for item in items:
            work(item)
        return
    with concurrent.futures.ThreadPoolExecutor(
        min(concurrency, len(items)), thread_name_prefix="forklift-objects"
    ) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()


def _translated(call: Callable[[], T]) -> T:
    """Run ``call``; errors leave as FileNotFoundError, FileExistsError, PermissionError or
    OSError (fsspec's own translation of S3 errors already gives these for most cases)."""
    try:
        return call()
    except OSError:
        raise
    except Exception as error:
        # botocore's connection errors, aiohttp's, timeouts: storage unreachable or failing.
        raise OSError(f"{type(error).__name__}: {error}") from error


def _etag_of(result: Any) -> str | None:
    if isinstance(result, dict):
        etag = result.get("ETag") or result.get("etag")
        return None if etag is None else str(etag)
    return None


def _object_info(path: str, details: dict[str, Any]) -> ObjectInfo:
    modified: Any = None
    for field in ("LastModified", "mtime", "last_modified", "updated", "created"):
        modified = details.get(field)
        if modified is not None:
            break
    etag = details.get("ETag") or details.get("etag") or details.get("md5Hash")
    return ObjectInfo(
        str(details.get("name", path)),
        int(details.get("size") or 0),
        _timestamp(modified),
        None if etag is None else str(etag),
    )


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return float(value.timestamp())
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    return 0.0
