"""What a failed task leaves behind when ``Parallel(on_error="return")`` keeps going.

A :class:`TaskFailure` stands in the results where the task's value would be: it carries the
exception, the traceback text from where it ran, the call, its position in the input and how
many times it was tried. :func:`summarise` writes the end-of-run summary.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable
from typing import Any

__all__ = ["TaskFailure", "summarise"]


@dataclasses.dataclass(frozen=True, eq=False)
class TaskFailure:
    """A task that failed (after its retries), in place of its result.

    ``bool(failure)`` is False, so ``[r for r in results if r]`` keeps the successes of a run
    whose results are all truthy; ``isinstance(r, TaskFailure)`` is the exact test.

    Examples:
        >>> from forklift import Parallel, TaskFailure, delayed
        >>> results = Parallel(n_jobs=2, backend="threading", on_error="return")(
        ...     delayed(int)(text) for text in ["1", "x", "3"]
        ... )
        >>> results
        [1, TaskFailure(task 1, int(): ValueError: invalid literal for int() with base 10: 'x'), 3]
        >>> failure = results[1]
        >>> failure.index, failure.args, type(failure.exception).__name__
        (1, ('x',), 'ValueError')
    """

    index: int
    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    exception: BaseException
    traceback: str
    attempts: int = 1

    def __bool__(self) -> bool:
        return False

    def reraise(self) -> None:
        """Raise the task's exception in the caller."""
        raise self.exception

    def __repr__(self) -> str:
        kind = type(self.exception).__name__
        return f"TaskFailure(task {self.index}, {self.function}(): {kind}: {self.exception})"


def summarise(failures: Iterable[TaskFailure], total: int) -> str:
    """One paragraph: how many failed, grouped by exception type, with the first few tasks."""
    failures = list(failures)
    if not failures:
        return f"all {total} tasks succeeded"
    by_kind: dict[str, list[TaskFailure]] = collections.defaultdict(list)
    for failure in failures:
        by_kind[type(failure.exception).__name__].append(failure)
    lines = [f"{len(failures)} of {total} tasks failed:"]
    for kind, group in sorted(by_kind.items(), key=lambda item: -len(item[1])):
        shown = ", ".join(str(f.index) for f in group[:5])
        more = f" and {len(group) - 5} more" if len(group) > 5 else ""
        lines.append(f"  {kind} x{len(group)} (tasks {shown}{more}): {group[0].exception}")
    return "\n".join(lines)
