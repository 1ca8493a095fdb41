"""What the process backend runs inside a worker: a batch, with its outcome made fit to travel.

Kept apart from :mod:`.processes` so that a worker imports only this and the backend protocol
(not the pool's parent-side machinery); the fork server preloads it, so workers start with it.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

from forklift.errors import TaskPicklingError
from forklift.parallel.backends.base import Batch, BatchOutcome, describe_call, run_batch
from forklift.pool.error_transport import pack_error

__all__ = ["WORKER_MODULE", "run_batch_in_worker"]

WORKER_MODULE = __name__


@dataclasses.dataclass
class _WorkerOutcome(BatchOutcome):
    """A batch outcome that can say which result would not pickle."""

    calls: list[Any] = dataclasses.field(default_factory=list, repr=False)
    first_task: int = 0

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Travels as a plain BatchOutcome: the calls stay in the worker.
        return _as_batch_outcome, (_outcome_fields(self),)

    def replacement_when_unpicklable(self, error: BaseException) -> BatchOutcome:
        for position, result in enumerate(self.results):
            try:
                pickle.dumps(result, protocol=5)
            except Exception:
                import cloudpickle

                try:
                    cloudpickle.dumps(result, protocol=5)
                except Exception as reason:
                    return _unpicklable(self, position, result, reason)
        return _unpicklable(self, len(self.results) - 1, None, error)


def _unpicklable(
    outcome: _WorkerOutcome, position: int, result: object, reason: BaseException
) -> BatchOutcome:
    name = describe_call(outcome.calls[position]) if outcome.calls else "a task"
    problem = TaskPicklingError(
        f"the result of {name}() (a {type(result).__name__}) could not be pickled to send it "
        f"back from the worker: {reason}"
    )
    fields = _outcome_fields(outcome)
    fields.update(
        results=outcome.results[:position],
        error=problem,
        error_traceback=f"TaskPicklingError: {problem}\n",
        error_task=position,
    )
    return BatchOutcome(**fields)


def run_batch_in_worker(batch: Batch) -> BatchOutcome:
    """Runs in a worker: the batch, and errors made fit to travel back."""
    outcome = run_batch(batch, worker_of="loky")
    if outcome.error is not None:
        # Unpickled in the caller, the parcel is the task's exception again (its own class,
        # attributes and chain; see forklift.pool.error_transport).
        outcome.error = pack_error(outcome.error)
        return outcome
    return _WorkerOutcome(
        **_outcome_fields(outcome), calls=batch.calls, first_task=batch.first_task
    )


def _outcome_fields(outcome: BatchOutcome) -> dict[str, Any]:
    return {field.name: getattr(outcome, field.name) for field in _BATCH_OUTCOME_FIELDS}


def _as_batch_outcome(fields: dict[str, Any]) -> BatchOutcome:
    return BatchOutcome(**fields)


_BATCH_OUTCOME_FIELDS = dataclasses.fields(BatchOutcome)
