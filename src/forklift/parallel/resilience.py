"""Resilient runs: what the engine does when a task fails, hangs, or was done before.

``Parallel`` turns its resilience parameters into one :class:`Resilience` value; the engine
asks a :class:`FailureTracker` what to do with each failure:

* **retry** it (after the policy's backoff) while it has attempts left and its exception is
  one the policy retries - a worker that died under it, or a task that ran past its
  ``task_timeout``, counts as the task's failure;
* **record** it as a :class:`~forklift.parallel.failures.TaskFailure` in place of its result
  (``on_error="return"``), so every success is kept;
* **raise** it (``on_error="raise"``, joblib's behaviour and the default).

A checkpoint (``Parallel(checkpoint=Memory(...))``) stores each task's result as it
completes; when the same call runs again, tasks whose results are stored are restored in the
caller instead of being sent to a worker.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from forklift.errors import ConfigurationError
from forklift.parallel.backends.base import Call
from forklift.parallel.failures import TaskFailure
from forklift.parallel.retries import RetryPolicy

__all__ = [
    "ON_ERROR",
    "Checkpoint",
    "CheckpointedCalls",
    "Decision",
    "FailureTracker",
    "Resilience",
]

ON_ERROR: tuple[str, ...] = ("raise", "return")


@runtime_checkable
class Checkpoint(Protocol):
    """What ``Parallel(checkpoint=...)`` needs: a ``Memory`` (or anything with ``cache``)."""

    def cache(self, func: Callable[..., Any]) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Resilience:
    """The resilience settings of one ``Parallel``, validated once."""

    retry: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    on_error: Literal["raise", "return"] = "raise"
    task_timeout: float | None = None
    checkpoint: Checkpoint | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ConfigurationError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}")
        timeout = self.task_timeout
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ConfigurationError(
                f"task_timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        if self.checkpoint is not None and not isinstance(self.checkpoint, Checkpoint):
            raise ConfigurationError(
                "checkpoint must be a forklift.Memory (or an object with a cache(function) "
                f"method), got {self.checkpoint!r}"
            )
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigurationError(f"seed must be a non-negative integer or None, got {seed!r}")

    @property
    def tolerates_failures(self) -> bool:
        """Whether a failure can end in anything but raising."""
        return self.retry.attempts > 0 or self.on_error == "return"


class Decision(enum.Enum):
    RETRY = "retry"
    RECORD = "record"
    RAISE = "raise"


class FailureTracker:
    """Counts each task's failures and decides, per the resilience settings, what follows."""

    def __init__(self, resilience: Resilience) -> None:
        self.resilience = resilience
        self.failures: list[TaskFailure] = []
        self.retried = 0
        self._attempts: dict[int, int] = {}

    def decide(self, task_index: int, error: BaseException) -> tuple[Decision, float]:
        """What to do with ``error`` from task ``task_index``, and the delay for a retry."""
        failures = self._attempts.get(task_index, 0) + 1
        self._attempts[task_index] = failures
        policy = self.resilience.retry
        if policy.should_retry(error, failures):
            self.retried += 1
            return Decision.RETRY, policy.delay_before(failures)
        if self.resilience.on_error == "return":
            return Decision.RECORD, 0.0
        return Decision.RAISE, 0.0

    def record(
        self, task_index: int, call: Call, error: BaseException, traceback_text: str, name: str
    ) -> TaskFailure:
        _, args, kwargs = call
        failure = TaskFailure(
            index=task_index,
            function=name,
            args=tuple(args),
            kwargs=dict(kwargs),
            exception=error,
            traceback=traceback_text,
            attempts=self._attempts.get(task_index, 1),
        )
        self.failures.append(failure)
        return failure


class CheckpointedCalls:
    """Wraps calls with the checkpoint's cache and restores the ones already stored."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self._checkpoint = checkpoint
        self._wrapped: dict[int, Any] = {}
        self.restored = 0

    def wrap(self, call: Call) -> tuple[Call, bool]:
        """The call to send (through the cache) and whether its result is already stored."""
        function, args, kwargs = call
        cached = self._wrapped.get(id(function))
        if cached is None:
            cached = self._wrapped[id(function)] = self._checkpoint.cache(function)
        stored = bool(cached.check_call_in_cache(*args, **kwargs))
        return (cached, args, kwargs), stored

    def restore(self, call: Call) -> Any:
        """Load a stored result (``call`` is a wrapped one)."""
        function, args, kwargs = call
        self.restored += 1
        return function(*args, **kwargs)
