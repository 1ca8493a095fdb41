"""The sequential backend: every batch runs in the caller's thread, at submit time.

It is what ``n_jobs=1`` uses, and what a ``Parallel`` nested inside a worker falls back to.
"""

from __future__ import annotations

from concurrent.futures import Future

from forklift.parallel.backends.base import (
    BackendCapabilities,
    Batch,
    BatchOutcome,
    ParallelBackendBase,
    run_batch,
)

__all__ = ["SequentialBackend"]


class SequentialBackend(ParallelBackendBase):
    """Runs each batch immediately in the calling thread."""

    name = "sequential"
    capabilities = BackendCapabilities(
        shares_memory=True,
        persistent_workers=False,
        batch_target_seconds=0.01,
        nested_backend="sequential",
    )

    def effective_n_jobs(self, n_jobs: int) -> int:
        return 1

    def start(self, n_workers: int) -> None:
        return None

    def submit(self, batch: Batch) -> Future[BatchOutcome]:
        future: Future[BatchOutcome] = Future()
        future.set_result(run_batch(batch))
        return future

    def abort(self) -> None:
        return None

    def abandon(self, future: Future[BatchOutcome]) -> None:
        return None  # batches run inline: by the time anyone could give up, they are done

    def stop(self, wait: bool = True) -> None:
        return None

    def __repr__(self) -> str:
        return "SequentialBackend()"
