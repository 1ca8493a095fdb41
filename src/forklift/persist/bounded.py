"""Jobs on worker threads, their results taken in submission order, a bounded number in flight.

Every parallel step of dump and load has the same shape: the calling thread reads or cuts
chunks in file order, worker threads (de)compress, shuffle or checksum them (code that
releases the GIL), and the results must be consumed in file order (written out, appended,
checked). :class:`OrderedJobs` is that loop, once::

    caller --submit(job)--> [worker threads, at most 2 * workers jobs in flight]
           <--consume(result), oldest first-- (the caller's thread)

With ``2 * workers`` in flight every worker has its next job queued while the caller handles
the oldest result, and memory stays bounded by that many chunks whatever the data's size.
With fewer than two workers a job runs at once on the caller's thread (no thread, no queue).

Rejected: ``Executor.map`` (it submits every job at once: a 1 GB section would hold all its
chunks in memory), and ``as_completed`` (results come out of order; the file is ordered).

Imports nothing from forklift.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

__all__ = ["OrderedJobs"]

Result = TypeVar("Result")


class OrderedJobs(Generic[Result]):
    """Run jobs on ``workers`` threads; ``consume`` gets each result in submission order.

    Use as a context manager: leaving it after an error cancels the jobs not started and
    waits for the running ones (a job never outlives the call that submitted it).
    """

    def __init__(
        self, workers: int, consume: Callable[[Result], Any], *, name: str = "forklift"
    ) -> None:
        self._consume = consume
        self._workers = workers
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._pending: collections.deque[Future[Result]] = collections.deque()

    def __enter__(self) -> OrderedJobs[Result]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def submit(self, job: Callable[..., Result], *args: Any) -> None:
        """Run ``job(*args)`` (on a worker when there are two or more); consume the oldest
        results while too many are in flight. A job's exception is raised here or by
        :meth:`drain`, when its turn to be consumed comes."""
        if self._workers < 2:
            self._consume(job(*args))
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix=self._name)
        self._pending.append(self._pool.submit(job, *args))
        while len(self._pending) >= 2 * self._workers:
            self._consume(self._pending.popleft().result())

    def drain(self) -> None:
        """Consume every result still in flight, in order."""
        while self._pending:
            self._consume(self._pending.popleft().result())

    def close(self) -> None:
        """Cancel what has not started, wait for what has, stop the threads."""
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
