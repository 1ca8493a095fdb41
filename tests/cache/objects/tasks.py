"""Functions the object-store tests send to cluster workers (a module workers can import)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any


def counted_square(x: int, counter: str, seconds: float = 0.0) -> int:
    """x*x, appending x to ``counter``: its lines are the computations that ran."""
    with open(counter, "a") as log:
        log.write(f"{x}\n")
    time.sleep(seconds)
    return x * x


class DiesWhenPickled:
    """A result whose pickling kills the process: a worker dying while it writes the entry."""

    def __reduce__(self) -> Any:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


def dies_while_storing(x: int, marker: str) -> Any:
    if not Path(marker).exists():
        Path(marker).touch()
        return DiesWhenPickled()
    return x * 10
