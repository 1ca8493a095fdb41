"""``forklift cache list|info|clear|prune DIR|URL``: look into and tidy a Memory cache (a
folder, or object storage such as ``s3://bucket/prefix``: see :mod:`.cache_locations`)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from forklift._support.sizes import format_bytes, parse_bytes
from forklift.cache.policies import Limits, select_evictions
from forklift.cache.stores.base import CallId, ItemInfo, StoreBackendBase
from forklift.cache.stores.local import LocalStore
from forklift.cli.cache_locations import open_object_cache, storage_option, storage_options_of
from forklift.cli.output import CommandError, NotFoundError, emit, table
from forklift.errors import CacheStoreUnavailableError

__all__ = ["add_cache_commands"]


@dataclasses.dataclass
class VersionSummary:
    version: str
    entries: int = 0
    bytes: int = 0
    last_access: float = 0.0
    current: bool = False


@dataclasses.dataclass
class FunctionSummary:
    name: str
    folder: str
    location: str
    fingerprint: str | None
    versions: list[VersionSummary]

    @property
    def entries(self) -> int:
        return sum(v.entries for v in self.versions if v.current)

    @property
    def bytes(self) -> int:
        return sum(v.bytes for v in self.versions)

    @property
    def stale_entries(self) -> int:
        return sum(v.entries for v in self.versions if not v.current)

    @property
    def last_access(self) -> float:
        return max((v.last_access for v in self.versions), default=0.0)


def open_cache(folder: str, arguments: argparse.Namespace | None = None) -> StoreBackendBase:
    """The store in ``folder`` (a Memory location, or its ``forklift`` subfolder), or at a
    URL (with the command's ``--storage-option`` values)."""
    options = storage_options_of(getattr(arguments, "storage_option", None))
    objects = open_object_cache(folder, options)
    if objects is not None:
        return objects
    path = Path(folder.removeprefix("file://"))
    if not path.exists():
        raise NotFoundError(f"{folder}: no such folder")
    if not path.is_dir():
        raise NotFoundError(f"{folder}: not a folder; give the location passed to Memory(...)")
    if path.name == "forklift" and not (path / "forklift").is_dir():
        path = path.parent
    if not (path / "forklift").is_dir():
        hint = (
            " (it is a joblib cache, which forklift does not read)"
            if (path / "joblib").is_dir()
            else ""
        )
        raise NotFoundError(f"{folder}: not a forklift cache: it has no 'forklift' folder{hint}")
    store = LocalStore()
    store.configure(str(path))
    return store


def summarise_cache(store: StoreBackendBase) -> list[FunctionSummary]:
    items_by_function: dict[tuple[str, ...], list[ItemInfo]] = defaultdict(list)
    for item in store.get_items():
        items_by_function[item.call_id.function].append(item)
    summaries = []
    for function in store.iter_functions():
        record = store.read_function_record(function) or {}
        fingerprint = record.get("fingerprint")
        versions: dict[str, VersionSummary] = {}
        for item in items_by_function.get(function, []):
            summary = versions.setdefault(
                item.call_id.version,
                VersionSummary(item.call_id.version, current=item.call_id.version == fingerprint),
            )
            summary.entries += 1
            summary.bytes += item.size
            summary.last_access = max(summary.last_access, item.last_access)
        summaries.append(
            FunctionSummary(
                name=str(record.get("name") or ".".join(function)),
                folder="/".join(function),
                location=str(record.get("location", "?")),
                fingerprint=fingerprint,
                versions=sorted(versions.values(), key=lambda v: (not v.current, v.version)),
            )
        )
    return sorted(summaries, key=lambda s: s.name)


def _chosen(
    summaries: list[FunctionSummary], arguments: argparse.Namespace
) -> list[FunctionSummary]:
    """The functions the command names (by name, qualified name or folder), or all."""
    wanted = arguments.function
    if wanted is None:
        return summaries
    if not wanted.strip():
        # An empty name must not fall through to "every function": clear would delete all.
        raise CommandError(
            f"an empty function name ({wanted!r}) names no function; give a name, or leave "
            "it out to mean every function"
        )
    chosen = [s for s in summaries if wanted in (s.name, s.folder) or s.name.endswith("." + wanted)]
    if not chosen:
        raise NotFoundError(f"no function {wanted!r} in {arguments.folder}")
    return chosen


def _when(timestamp: float) -> str:
    if not timestamp:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _list(arguments: argparse.Namespace) -> int:
    summaries = summarise_cache(open_cache(arguments.folder, arguments))
    rows = [
        {
            "function": s.name,
            "entries": s.entries,
            "size": s.bytes,
            "last_access": s.last_access,
            "stale_entries": s.stale_entries,
        }
        for s in summaries
    ]
    emit(
        arguments,
        rows,
        lambda: table(
            ["function", "entries", "size", "last access", "stale entries"],
            [
                [s.name, s.entries, format_bytes(s.bytes), _when(s.last_access), s.stale_entries]
                for s in summaries
            ],
            empty="(no cached functions)",
        ),
    )
    return 0


def _info(arguments: argparse.Namespace) -> int:
    summaries = _chosen(summarise_cache(open_cache(arguments.folder, arguments)), arguments)
    payload = {
        "folder": arguments.folder,
        "functions": len(summaries),
        "entries": sum(s.entries for s in summaries),
        "stale_entries": sum(s.stale_entries for s in summaries),
        "bytes": sum(s.bytes for s in summaries),
        "details": [
            {
                "function": s.name,
                "defined_at": s.location,
                "fingerprint": s.fingerprint,
                "versions": [dataclasses.asdict(v) for v in s.versions],
            }
            for s in summaries
        ],
    }

    def text() -> str:
        lines = [
            f"{payload['folder']}: {payload['functions']} functions, {payload['entries']} entries"
            f" ({payload['stale_entries']} stale), {format_bytes(int(payload['bytes']))}"
        ]
        for s in summaries:
            lines.append(f"\n{s.name}  (defined at {s.location})")
            lines.append(
                table(
                    ["code version", "state", "entries", "size", "last access"],
                    [
                        [
                            v.version[:16],
                            "current" if v.current else "stale",
                            v.entries,
                            format_bytes(v.bytes),
                            _when(v.last_access),
                        ]
                        for v in s.versions
                    ],
                    empty="  (no entries)",
                )
            )
        return "\n".join(lines)

    emit(arguments, payload, text)
    return 0


def _clear(arguments: argparse.Namespace) -> int:
    store = open_cache(arguments.folder, arguments)
    chosen = _chosen(summarise_cache(store), arguments)
    count = sum(s.entries + s.stale_entries for s in chosen)
    if not arguments.yes:
        if not sys.stdin.isatty():
            raise CommandError(
                f"refusing to delete {count} cached results without confirmation; add --yes"
            )
        answer = input(f"delete {count} cached results of {len(chosen)} functions? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    if arguments.function is not None:
        for summary in chosen:
            store.clear_path(tuple(summary.folder.split("/")))
    else:
        store.clear()
    emit(
        arguments,
        {"deleted_entries": count, "functions": len(chosen)},
        lambda: f"deleted {count} cached results",
    )
    return 0


def _parse_age(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    try:
        if text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age; use seconds or a number with s, m, h, d or w (e.g. 7d)"
        ) from None


def _size(text: str) -> int:
    try:
        return parse_bytes(text, name="--max-bytes")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _prune(arguments: argparse.Namespace) -> int:
    store = open_cache(arguments.folder, arguments)
    if (
        arguments.max_bytes is None
        and arguments.max_items is None
        and arguments.max_age is None
        and not arguments.stale
    ):
        raise CommandError("say what to prune: --max-bytes, --max-items, --max-age and/or --stale")
    items = store.get_items()
    doomed: list[ItemInfo] = []
    if arguments.stale:
        current = {s.folder: s.fingerprint for s in summarise_cache(store)}
        doomed = [
            i
            for i in items
            if current.get("/".join(i.call_id.function)) not in (None, i.call_id.version)
        ]
        items = [i for i in items if i not in doomed]
    limits = Limits(arguments.max_bytes, arguments.max_items, arguments.max_age)
    if limits.any:
        doomed += select_evictions(items, limits, time.time())
    freed = sum(i.size for i in doomed)
    if not arguments.dry_run:
        for item in doomed:
            store.clear_item(CallId(*item.call_id))
    verb = "would delete" if arguments.dry_run else "deleted"
    emit(
        arguments,
        {"deleted_entries": len(doomed), "freed_bytes": freed, "dry_run": arguments.dry_run},
        lambda: f"{verb} {len(doomed)} cached results, {format_bytes(freed)}",
    )
    return 0


def _reported(command: Any) -> Any:
    """``command``, with object storage failures turned into the command's own error."""

    def run(arguments: argparse.Namespace) -> int:
        try:
            result: int = command(arguments)
        except CacheStoreUnavailableError as error:
            raise CommandError(str(error)) from error
        return result

    return run


def add_cache_commands(commands: Any) -> None:
    cache = commands.add_parser(
        "cache",
        help="list, inspect, clear and prune a Memory cache folder",
        description="Look into and tidy the folder given to Memory(location).",
    )
    actions = cache.add_subparsers(dest="action", metavar="ACTION", required=True)

    def folder_command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=help_text, description=help_text
        )
        parser.add_argument(
            "folder", metavar="DIR|URL", help="the cache location given to Memory()"
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.add_argument(
            "--storage-option",
            action="append",
            type=storage_option,
            metavar="KEY=VALUE",
            help="for a URL: an fsspec storage option (repeatable; dotted keys nest, e.g. "
            "client_kwargs.region_name=eu-west-1)",
        )
        return parser

    listing = folder_command("list", "cached functions: entries, size, last access, stale entries")
    listing.set_defaults(run=_reported(_list))
    info = folder_command("info", "details per function: where defined, code versions, sizes")
    info.add_argument("function", nargs="?", help="only this function (name or qualified name)")
    info.set_defaults(run=_reported(_info))
    clear = folder_command("clear", "delete cached results (all, or one function's)")
    clear.add_argument("function", nargs="?", help="only this function (name or qualified name)")
    clear.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    clear.set_defaults(run=_reported(_clear))
    prune = folder_command(
        "prune", "delete least recently used results to fit limits, or stale code versions"
    )
    prune.add_argument("--max-bytes", type=_size, help="keep at most this much, e.g. 10G")
    prune.add_argument("--max-items", type=int, help="keep at most this many results")
    prune.add_argument(
        "--max-age", type=_parse_age, help="drop results unused for this long, e.g. 7d"
    )
    prune.add_argument("--stale", action="store_true", help="drop results of old code versions")
    prune.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    prune.set_defaults(run=_reported(_prune))
