"""``python -m benchmarks [--quick] [-k TEXT] [--rounds N]``: run every ``bench_*.py``
module's scenarios (those whose name holds TEXT), N measured rounds each."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from benchmarks.harness import (
    Result,
    format_table,
    load_average,
    load_note,
    machine_description,
    run_scenario,
    save,
)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("-k", dest="keyword", default="", help="only scenarios matching TEXT")
    parser.add_argument(
        "--rounds", type=int, default=None, help="measured rounds per scenario (default: its own)"
    )
    parser.add_argument("--out", default="bench-results/latest.json")
    arguments = parser.parse_args()
    if arguments.rounds is not None and arguments.rounds < 1:
        parser.error("--rounds must be at least 1")

    print(f"machine: {machine_description()}", flush=True)
    load_before = load_average()
    results: list[Result] = []
    package = Path(__file__).parent
    for module_info in sorted(pkgutil.iter_modules([str(package)]), key=lambda m: m.name):
        if not module_info.name.startswith("bench_"):
            continue
        module = importlib.import_module(f"benchmarks.{module_info.name}")
        for scenario in module.scenarios(arguments.quick):
            if arguments.keyword.lower() not in scenario.name.lower():
                continue
            print(f"running: {scenario.name}", file=sys.stderr, flush=True)
            results.append(run_scenario(scenario, arguments.rounds))
    if not results:
        print(f"no scenario matches {arguments.keyword!r}", file=sys.stderr)
        return 2
    print(format_table(results))
    print("\n" + load_note(load_before, load_average()))
    save(results, Path(arguments.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
