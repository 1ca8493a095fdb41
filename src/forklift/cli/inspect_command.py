"""``forklift inspect FILE``: what a dump file holds, without loading it."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from forklift.cli.output import NotFoundError, emit
from forklift.errors import PersistError
from forklift.persist import inspect_file
from forklift.persist.inspection import printable

__all__ = ["add_inspect_command"]


def _inspect(arguments: argparse.Namespace) -> int:
    try:
        report = inspect_file(arguments.file)
    except FileNotFoundError:
        raise NotFoundError(f"{arguments.file}: no such file") from None
    except IsADirectoryError:
        raise NotFoundError(f"{arguments.file}: is a folder, not a dump file") from None
    except (PersistError, OSError) as error:
        # one line, whatever the file holds: names from it may carry terminal escapes
        message = " ".join(str(error).split("\n"))
        raise NotFoundError(
            printable(f"{arguments.file}: not a readable forklift or joblib file: {message}")
        ) from None
    payload = dataclasses.asdict(report)
    payload["unsafe_globals"] = list(report.unsafe_globals())
    emit(arguments, payload, report.summary)
    return 0


def add_inspect_command(commands: Any) -> None:
    parser = commands.add_parser(
        "inspect",
        help="show what a dump file holds (types, arrays, compression, globals) without loading it",
        description=(
            "Describe a file written by forklift.dump or joblib.dump without executing it: "
            "format, compression, the globals (classes and functions) loading it would "
            "import, and the arrays it holds."
        ),
    )
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(run=_inspect)
