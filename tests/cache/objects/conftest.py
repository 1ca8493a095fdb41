"""A real S3-compatible server on loopback (moto's standalone server) for the object store.

One server serves the whole package (started once, stopped after its last test); each test
gets a bucket of its own. A test that stops or reconfigures a server starts its own with
:func:`start_s3_server`. The suite's leak guard snapshots threads and child processes at the
start of each test, after package fixtures are set up, so the server process and the threads
fsspec keeps for its event loop (started by the warm-up here) are part of every "before".
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

CREDENTIALS = {"key": "forklift-test", "secret": "forklift-test-secret"}


class S3Server:
    """``python -m moto.server`` on a free loopback port."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.05)

    def storage_options(self, **credentials: str) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint,
            **(credentials or CREDENTIALS),
            "client_kwargs": {"region_name": "us-east-1"},
            # Fail fast when the server is gone: one attempt, short connect timeout.
            "config_kwargs": {"connect_timeout": 2, "retries": {"max_attempts": 1}},
        }

    def boto(self, service: str = "s3") -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["key"],
            aws_secret_access_key=CREDENTIALS["secret"],
            region_name="us-east-1",
        )

    def new_bucket(self) -> str:
        name = f"bucket-{uuid.uuid4().hex[:12]}"
        self.boto().create_bucket(Bucket=name)
        return name

    def enforce_auth(self, enforced: bool) -> None:
        """Make the server check credentials against its IAM users (or stop checking)."""
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=b"0" if enforced else b"inf",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def read_only_credentials(self) -> dict[str, str]:
        """An IAM user that may read and list, not write."""
        iam = self.boto("iam")
        user = f"reader-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=user)
        iam.put_user_policy(
            UserName=user,
            PolicyName="read-only",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:Get*", "s3:Head*", "s3:List*"],
                            "Resource": "*",
                        }
                    ],
                }
            ),
        )
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_s3_server() -> S3Server:
    return S3Server()


def warm_up(server: S3Server) -> None:
    """Start fsspec's event-loop threads (they live as long as the process) before tests."""
    from forklift import Memory

    bucket = server.new_bucket()
    memory = Memory(
        f"s3://{bucket}/warm-up",
        verbose=0,
        backend_options={"storage_options": server.storage_options()},
    )
    memory.cache(len)("warm")
    memory.reduce_size(items_limit=0)
    memory.clear()


@pytest.fixture(scope="package")
def s3_server() -> Iterator[S3Server]:
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    server = start_s3_server()
    try:
        warm_up(server)
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_url(s3_server: S3Server) -> str:
    """A cache location in a fresh bucket."""
    return f"s3://{s3_server.new_bucket()}/cache"


@pytest.fixture
def s3_options(s3_server: S3Server) -> dict[str, Any]:
    """``backend_options`` for a Memory on the package's server."""
    return {"storage_options": s3_server.storage_options()}
