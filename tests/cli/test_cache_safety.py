"""``forklift cache`` never deletes more than it was asked to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from forklift import Memory


def forklift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forklift", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("name", ["", "   "])
@pytest.mark.parametrize("action", ["clear", "info"])
def test_an_empty_function_name_is_an_error_not_everything(
    tmp_path: Path, name: str, action: str
) -> None:
    cache = tmp_path / "cache"
    cached = Memory(cache, verbose=0).cache(square)
    for i in range(3):
        cached(i)
    extra = ["--yes"] if action == "clear" else []
    done = forklift("cache", action, str(cache), name, *extra)
    assert done.returncode == 1, done.stdout
    assert "empty function name" in done.stderr and "leave it out" in done.stderr
    rows = json.loads(forklift("cache", "list", str(cache), "--json").stdout)
    assert [row["entries"] for row in rows] == [3]  # nothing deleted
