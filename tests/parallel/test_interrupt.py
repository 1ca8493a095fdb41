"""Ctrl-C in the caller: a real SIGINT sent to a real process running Parallel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    # A shell's background job (`pytest ... &`) starts with SIGINT ignored, and children
    # inherit that: take Ctrl-C the way an interactive Python does.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from forklift import Parallel, delayed

    pulled = 0
    def calls():
        global pulled
        while True:
            pulled += 1
            yield delayed(time.sleep)(5)

    print("ready", flush=True)
    try:
        Parallel(n_jobs=2, backend=sys.argv[1], batch_size=1)(calls())
    except KeyboardInterrupt:
        print(f"interrupted after pulling {pulled}", flush=True)
        os._exit(0)  # do not wait for the two sleeping threads at exit
    """
)


@pytest.mark.parametrize("backend", ["threading", "sequential"])
def test_ctrl_c_returns_control_promptly(backend: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, backend], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            time.sleep(0.5)  # let it start the first tasks
            sent = time.monotonic()
            os.kill(child.pid, signal.SIGINT)
            line = child.stdout.readline()
            elapsed = time.monotonic() - sent
            assert line.startswith("interrupted"), line
            assert elapsed < 2.0, f"took {elapsed:.1f}s to return control"
            pulled = int(line.split()[-1])
            assert pulled <= 6  # dispatch had stopped at pre_dispatch, not run away
            assert child.wait(timeout=10) == 0
        finally:
            if child.poll() is None:
                child.kill()
