"""Run a test script in a fresh interpreter and collect what it reports.

Some behaviours need classes that live in a script's ``__main__`` (exceptions, results), so
their tests run a script that prints one JSON record per check: ``{"check": name, ...}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).parents[1] / "src")


def run_check_script(
    script: Path, *arguments: str, cwd: Path, env: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """The script's records by check name; fails the test if the script fails."""
    environment = dict(os.environ if env is None else env)
    # An empty entry would put the current directory on the path: join only real ones.
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, environment.get("PYTHONPATH")]))
    finished = subprocess.run(
        [sys.executable, str(script), *arguments],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        env=environment,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    checks: dict[str, dict[str, Any]] = {}
    for line in finished.stdout.splitlines():
        record = json.loads(line)
        checks[record.pop("check")] = record
    return checks
