"""Output helpers for the command line: tables, JSON, and the errors that set exit codes.

Exit codes scripts can rely on: 0 success, 1 the command failed, 2 bad usage,
3 the path is not what the command needs (not a cache, not a forklift or joblib file).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["EXIT_FAILED", "EXIT_NOT_FOUND", "CommandError", "NotFoundError", "emit", "table"]

EXIT_FAILED = 1
EXIT_NOT_FOUND = 3


class CommandError(Exception):
    """The command could not do what was asked; exit code 1."""

    exit_code = EXIT_FAILED


class NotFoundError(CommandError):
    """The path given is not a cache / not a dump file; exit code 3."""

    exit_code = EXIT_NOT_FOUND


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "") -> str:
    if not rows:
        return empty
    cells = [[str(value) for value in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    numeric = [
        all(
            str(row[i]).replace(".", "").replace(" ", "").isdigit() or str(row[i]) == "-"
            for row in rows
        )
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join(
        [line(list(headers)), line(["-" * w for w in widths]), *(line(row) for row in cells)]
    )


def emit(arguments: argparse.Namespace, payload: Any, text: Callable[[], str]) -> None:
    if getattr(arguments, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text())
