"""Memory on object storage: hit and miss latency on a loopback S3 server against the local
store (subject: s3, baseline: local; no target - the rows show what a request costs).

The S3 server is moto's, started here on a free loopback port and stopped at exit: it is an
in-process Python server, so its figures are an upper bound on the store's own overhead
(MinIO or AWS answer a small GET in ~1-10 ms). Rows:

* hit, repeated: a small result held in memory, checked with one ``HEAD`` per call;
* hit, first in this function object: one ranged ``GET`` plus the ``.seen`` ``PUT``;
* hit, 16 MB result: parts fetched in parallel;
* miss: ``GET`` (404), lease ``PUT``, entry ``PUT``, lease ``DELETE``, one ``HEAD``.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Scenario

OPTIONS: dict[str, Any] = {}


def add(x: int, y: int = 2) -> int:
    return x + y


def block(n: int) -> Any:
    import numpy as np

    return np.ones(n)


def _start_server() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(process.wait)
    atexit.register(process.terminate)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return f"http://127.0.0.1:{port}"


def _s3_memory(endpoint: str) -> Callable[[], Any]:
    import fsspec

    import forklift

    storage = {
        "endpoint_url": endpoint,
        "key": "bench",
        "secret": "bench",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    fs = fsspec.filesystem("s3", **storage, use_listings_cache=False)

    def make() -> Any:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        fs.call_s3("create_bucket", Bucket=bucket)
        return forklift.Memory(
            f"s3://{bucket}/cache", verbose=0, backend_options={"storage_options": storage}
        )

    return make


def _local_memory() -> Any:
    import forklift

    folder = tempfile.mkdtemp(prefix="bench-objects-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return forklift.Memory(folder, verbose=0)


def _repeated_hits(memory: Any, function: Callable[..., Any], argument: Any, calls: int) -> Any:
    cached = memory.cache(function)
    cached(argument)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            cached(argument)
        return (time.perf_counter() - start) / calls

    return run


def _first_hits(memory: Any, function: Callable[..., Any], argument: Any, calls: int) -> Any:
    memory.cache(function)(argument)

    def run() -> float:
        fresh = [memory.cache(function) for _ in range(calls)]  # no in-memory copy yet
        start = time.perf_counter()
        for cached in fresh:
            cached(argument)
        return (time.perf_counter() - start) / calls

    return run


def _misses(memory: Any, calls: int) -> Any:
    cached = memory.cache(add)
    offset = [0]

    def run() -> float:
        base = offset[0]
        offset[0] += calls
        start = time.perf_counter()
        for i in range(base, base + calls):
            cached(i)
        return (time.perf_counter() - start) / calls

    return run


def scenarios(quick: bool) -> list[Scenario]:
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError:
        return []
    make_s3 = _s3_memory(_start_server())
    s3, local = make_s3(), _local_memory()
    calls = 20 if quick else 100
    repeats = 3 if quick else 7
    size = 2_000_000  # 16 MB of float64: 2 parts of 8 MiB

    def pair(runner: Callable[[Any], Any]) -> dict[str, Callable[[], float]]:
        return {"s3": runner(s3), "local": runner(local)}

    return [
        Scenario(
            name="Object store: hit, small result, repeated (per call)",
            runners=pair(lambda m: _repeated_hits(m, add, 1, calls)),
            subject="s3",
            baseline="local",
            repeats=repeats,
            note="one HEAD checks the in-memory copy",
        ),
        Scenario(
            name="Object store: hit, small result, first in the process (per call)",
            runners=pair(lambda m: _first_hits(m, add, 1, calls)),
            subject="s3",
            baseline="local",
            repeats=repeats,
            note="one ranged GET and the .seen PUT",
        ),
        Scenario(
            name="Object store: hit, 16 MB result (per call)",
            runners=pair(lambda m: _first_hits(m, block, size, 2 if quick else 5)),
            subject="s3",
            baseline="local",
            repeats=repeats,
            note="parts fetched in parallel into an unnamed temporary file",
        ),
        Scenario(
            name="Object store: miss, small result (per call)",
            runners=pair(lambda m: _misses(m, calls)),
            subject="s3",
            baseline="local",
            repeats=repeats,
            note="GET (404), lease PUT, entry PUT with If-None-Match, lease DELETE",
        ),
    ]
