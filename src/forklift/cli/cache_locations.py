"""Where ``forklift cache ...`` finds a cache: a folder, or an object-storage URL.

A URL (``s3://bucket/prefix``, any fsspec URL) opens the object store in strict mode, so an
unreachable bucket or bad credentials are an error the command reports, never an empty
listing. Credentials and endpoints come from ``--storage-option KEY=VALUE`` (repeatable;
dotted keys nest: ``client_kwargs.region_name=eu-west-1``; values that read as JSON -
``true``, ``3``, ``{"a": 1}`` - are taken as such) and from the engine's own environment
variables (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``, ...), which fsspec's
filesystems read themselves.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from forklift.cache.stores.object_client import split_url
from forklift.cache.stores.objects import ObjectStore
from forklift.cli.output import CommandError, NotFoundError

__all__ = ["open_object_cache", "storage_option", "storage_options_of"]


def storage_option(text: str) -> tuple[list[str], Any]:
    """argparse type of ``--storage-option KEY=VALUE``."""
    key, equals, value = text.partition("=")
    if not equals or not key or any(not part for part in key.split(".")):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not KEY=VALUE (e.g. endpoint_url=http://127.0.0.1:9000, "
            "client_kwargs.region_name=eu-west-1)"
        )
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    return key.split("."), parsed


def storage_options_of(pairs: list[tuple[list[str], Any]] | None) -> dict[str, Any]:
    """The nested dict the ``--storage-option`` pairs describe."""
    options: dict[str, Any] = {}
    for path, value in pairs or []:
        level = options
        for part in path[:-1]:
            child = level.setdefault(part, {})
            if not isinstance(child, dict):
                raise argparse.ArgumentTypeError(
                    f"--storage-option {'.'.join(path)}: {part} is already set to a value"
                )
            level = child
        level[path[-1]] = value
    return options


def open_object_cache(location: str, storage_options: dict[str, Any]) -> ObjectStore | None:
    """The object store at ``location`` if it is a URL (None for a folder); raises
    :class:`NotFoundError` when nothing was ever cached there."""
    url = split_url(location)
    if url is None or url[0] == "file":
        return None
    store = ObjectStore()
    store.configure(location, 0, {"storage_options": storage_options, "strict": True})
    try:
        found = store.client.children(store.root)
    except OSError as error:
        raise CommandError(f"{location}: cannot list the cache: {error}") from error
    if not found:
        raise NotFoundError(f"{location}: not a forklift cache: nothing under {location}/forklift")
    return store
