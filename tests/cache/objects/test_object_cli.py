"""``forklift cache list|info|clear|prune s3://...`` as a real process against a real S3
server on loopback: storage options from the command line and from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.cache.objects.conftest import CREDENTIALS, S3Server

from forklift import Memory


def forklift(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forklift", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=Path(__file__).parents[3],
    )


def square(x: int) -> int:
    return x * x


def cube(x: int) -> int:
    return x**3


@pytest.fixture
def filled(s3_url: str, s3_options: Any) -> str:
    memory = Memory(s3_url, verbose=0, backend_options=s3_options)
    for i in range(5):
        memory.cache(square)(i)
    for i in range(3):
        memory.cache(cube)(i)
    return s3_url


def options(server: S3Server) -> list[str]:
    return [
        "--storage-option",
        f"endpoint_url={server.endpoint}",
        "--storage-option",
        f"key={CREDENTIALS['key']}",
        "--storage-option",
        f"secret={CREDENTIALS['secret']}",
        "--storage-option",
        "client_kwargs.region_name=us-east-1",
    ]


def test_list_info_prune_clear(s3_server: S3Server, filled: str) -> None:
    listed = forklift("cache", "list", filled, "--json", *options(s3_server))
    assert listed.returncode == 0, listed.stderr
    rows = {row["function"].split(".")[-1]: row for row in json.loads(listed.stdout)}
    assert rows["square"]["entries"] == 5 and rows["cube"]["entries"] == 3
    info = forklift("cache", "info", filled, "square", *options(s3_server))
    assert info.returncode == 0 and "5 entries" in info.stdout, info.stderr
    pruned = forklift("cache", "prune", filled, "--max-items", "4", "--json", *options(s3_server))
    assert json.loads(pruned.stdout)["deleted_entries"] == 4, pruned.stderr
    cleared = forklift("cache", "clear", filled, "--yes", *options(s3_server))
    assert cleared.returncode == 0 and "deleted 4 cached results" in cleared.stdout
    assert forklift("cache", "list", filled, *options(s3_server)).returncode == 3


def test_the_engines_environment_variables_are_honoured(s3_server: S3Server, filled: str) -> None:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": s3_server.endpoint,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["key"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["secret"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    listed = forklift("cache", "list", filled, "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert sum(row["entries"] for row in json.loads(listed.stdout)) == 8


def test_bad_options_and_unreachable_storage_are_reported(s3_server: S3Server, filled: str) -> None:
    bad = forklift("cache", "list", filled, "--storage-option", "no-equals-sign")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    unreachable = forklift(
        "cache",
        "list",
        filled,
        "--storage-option",
        "endpoint_url=http://127.0.0.1:9",
        "--storage-option",
        "config_kwargs.retries.max_attempts=1",
        *options(s3_server)[2:],
    )
    assert unreachable.returncode == 1 and "cannot list the cache" in unreachable.stderr
