"""Entry point of the ``forklift`` command: parses arguments and dispatches to subcommands.

Exit codes: 0 success, 1 the command failed, 2 bad usage, 3 the path given is not a cache
or not a forklift/joblib file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from forklift.cli.cache_commands import add_cache_commands
from forklift.cli.inspect_command import add_inspect_command
from forklift.cli.output import CommandError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forklift",
        description="forklift: parallel loops, disk caching and fast persistence.",
        epilog="exit codes: 0 success, 1 failed, 2 bad usage, 3 not a cache / not a dump file",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run a real text-feature pipeline sequentially and in parallel",
        description=(
            "Generate a folder of text files, extract word features from each, first one "
            "file at a time and then with Parallel, and print the speed-up."
        ),
    )
    demo.add_argument("--files", type=int, default=32, help="how many files (default 32)")
    demo.add_argument(
        "--n-jobs", type=int, default=-1, help="workers for the parallel run (default -1: all)"
    )
    demo.add_argument(
        "--backend", default=None, help="backend for the parallel run (default: processes)"
    )
    demo.set_defaults(run=_demo)
    add_cache_commands(commands)
    add_inspect_command(commands)
    return parser


def _demo(arguments: argparse.Namespace) -> int:
    from forklift.cli.demo import run_demo

    return run_demo(n_files=arguments.files, n_jobs=arguments.n_jobs, backend=arguments.backend)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    run = getattr(arguments, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(run(arguments))
    except CommandError as error:
        print(f"forklift {arguments.command}: {error}", file=sys.stderr)
        return error.exit_code
