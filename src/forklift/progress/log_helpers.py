"""``Logger`` and ``PrintTime``: joblib's small helpers for logging cached computations.

``Logger`` formats objects briefly and sends messages to the ``logging`` module;
``PrintTime`` prints the time elapsed since it was made (and since its last call), to stderr
and optionally to a log file.
"""

from __future__ import annotations

import logging
import os
import pprint
import sys
import time
from typing import Any

__all__ = ["Logger", "PrintTime", "format_time"]


def format_time(seconds: float) -> str:
    """Seconds and minutes, as joblib writes them: ``format_time(75) == '75.0s, 1.2min'``."""
    return f"{seconds:.1f}s, {seconds / 60:.1f}min"


class Logger:
    """Logs through ``logging.getLogger(name)`` (``"forklift"`` when no name is given).

    Examples:
        >>> from forklift import Logger
        >>> Logger().format({"a": 1})
        "{'a': 1}"
        >>> Logger(depth=1).format({"a": {"b": 1}})    # nested levels beyond depth elided
        "{'a': {...}}"
    """

    def __init__(self, depth: int = 3, name: str | None = None) -> None:
        self.depth = depth
        self._logger = logging.getLogger(name or "forklift")

    def warn(self, msg: str) -> None:
        self._logger.warning(msg)

    def info(self, msg: str) -> None:
        self._logger.info(msg)

    def debug(self, msg: str) -> None:
        self._logger.debug(msg)

    def format(self, obj: Any, indent: int = 0) -> str:
        """A short, readable representation of ``obj`` (nested ``depth`` levels deep)."""
        text = pprint.pformat(obj, depth=self.depth, compact=True)
        return text.replace("\n", "\n" + " " * indent) if indent else text


class PrintTime:
    """Print elapsed times: ``print_time = PrintTime(); ...; print_time("step done")``.

    Each call writes a line in joblib's format to stderr, and to ``logfile`` (or
    ``<logdir>/forklift.log``) when given: ``"<msg>: 1.5s, 0.0min"`` since the last call,
    or with ``total=True`` ``"<msg>: 1.52s, 0.0 min"`` since the start.

    Examples:
        >>> import os, tempfile
        >>> from forklift import PrintTime
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     print_time = PrintTime(logdir=folder)
        ...     print_time("loaded")                  # stderr: "loaded: 0.0s, 0.0min"
        ...     print_time("all steps", total=True)   # stderr: "all steps: 0.00s, 0.0 min"
        ...     with open(os.path.join(folder, "forklift.log")) as log:
        ...         print(log.read().strip().splitlines()[1:])
        ['loaded: ...s, ...min', 'all steps: ...s, ... min']
    """

    def __init__(self, logfile: str | None = None, logdir: str | None = None) -> None:
        if logfile is not None and logdir is not None:
            raise ValueError("give PrintTime a logfile or a logdir, not both")
        if logdir is not None:
            logfile = os.path.join(logdir, "forklift.log")
        self.logfile = logfile
        self.start = self.last = time.time()
        if logfile is not None:
            os.makedirs(os.path.dirname(os.path.abspath(logfile)), exist_ok=True)
            with open(logfile, "a", encoding="utf-8") as file:
                file.write(f"\nLogging started {time.ctime(self.start)}\n")

    def __call__(self, msg: str = "", total: bool = False) -> None:
        now = time.time()
        if total:
            elapsed = now - self.start
            line = f"{msg}: {elapsed:.2f}s, {elapsed / 60:.1f} min"
        else:
            line = f"{msg}: {format_time(now - self.last)}"
        sys.stderr.write(line + "\n")
        if self.logfile is not None:
            with open(self.logfile, "a", encoding="utf-8") as file:
                file.write(line + "\n")
        self.last = now
