"""Entry point of the ``forklift`` command: parses arguments and dispatches to subcommands.

Exit codes: 0 success, 1 the command failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forklift",
        description="forklift: parallel loops, disk caching and fast persistence.",
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
    demo.add_argument("--files", type=int, default=48, help="how many files (default 48)")
    demo.add_argument(
        "--n-jobs", type=int, default=-1, help="workers for the parallel run (default -1: all)"
    )
    demo.add_argument(
        "--backend", default=None, help="backend for the parallel run (default: processes)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.command == "demo":
        from forklift.cli.demo import run_demo

        return run_demo(n_files=arguments.files, n_jobs=arguments.n_jobs, backend=arguments.backend)
    parser.print_help(sys.stderr)
    return 2
