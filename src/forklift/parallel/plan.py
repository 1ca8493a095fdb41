"""From ``Parallel``'s arguments to one run's :class:`RunPlan`: checked once, applied per call.

``Parallel`` hands its own arguments (those that are not settings) to :meth:`CallOptions.check`
when it is made, so a bad value fails where it was written. Each call then combines the
options with the backend chosen for it (:mod:`.selection`) in :func:`plan_run`: how many
batches may be in flight, the batch size, and the settings a task sees in its worker. The
engine (:mod:`.engine`) only executes a plan; it decides none of this.

Kept apart from ``api.py`` so that the public class only passes arguments through, and apart
from the engine so that the engine never reads a user's argument.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any, Final, Literal

from forklift._support.arithmetic import evaluate_expression
from forklift.config import Settings, as_integer
from forklift.errors import ConfigurationError
from forklift.parallel.backends.base import Backend
from forklift.parallel.resilience import Resilience
from forklift.parallel.selection import Selection
from forklift.progress.events import Reporter
from forklift.progress.options import ObservationOptions

__all__ = ["RETURN_AS", "CallOptions", "ReturnAs", "RunPlan", "plan_run"]

RETURN_AS: Final = ("list", "generator", "generator_unordered")
ReturnAs = Literal["list", "generator", "generator_unordered"]


@dataclasses.dataclass
class RunPlan:
    """Everything one run needs, decided before the run starts.

    ``max_in_flight`` counts batches (None: no limit, pull the whole input at once);
    ``batch_size`` None means automatic sizing. ``expected_total`` is the input's ``len()``
    when it has one, for reporters and for sizing the last batches.
    """

    backend: Backend
    n_workers: int
    n_jobs: int | None
    max_in_flight: int | None
    batch_size: int | None
    timeout: float | None
    ordered: bool
    worker_settings: Settings
    reporters: Sequence[Reporter] = ()
    expected_total: int | None = None
    resilience: Resilience = dataclasses.field(default_factory=Resilience)


@dataclasses.dataclass(frozen=True)
class CallOptions:
    """Parallel's own arguments that are not settings, validated once."""

    return_as: ReturnAs
    timeout: float | None
    pre_dispatch: int | str
    batch_size: int | None  # None: "auto"
    observation: ObservationOptions
    resilience: Resilience

    @classmethod
    def check(
        cls,
        return_as: object,
        timeout: object,
        pre_dispatch: object,
        batch_size: object,
        observation: ObservationOptions,
        resilience: Resilience,
    ) -> CallOptions:
        """Validate the arguments; raise ConfigurationError naming the bad one."""
        return cls(
            return_as=_check_return_as(return_as),
            timeout=_check_timeout(timeout),
            pre_dispatch=_check_pre_dispatch(pre_dispatch),
            batch_size=_check_batch_size(batch_size),
            observation=observation,
            resilience=resilience,
        )


def plan_run(
    options: CallOptions,
    selection: Selection,
    settings: Settings,
    expected_total: int | None = None,
) -> RunPlan:
    """The plan of one call on ``selection``'s backend (see the module docstring)."""
    backend = selection.backend
    batch_size = options.batch_size
    if backend.name == "sequential":
        max_in_flight: int | None = 1  # running ahead inline buys nothing
    elif options.resilience.task_timeout is not None:
        # A task's clock starts when it is sent: send no more than there are workers,
        # one task per batch, so that sent means started.
        max_in_flight, batch_size = selection.n_workers, 1
    else:
        max_in_flight = _batches_in_flight(options.pre_dispatch, selection.n_workers)
    return RunPlan(
        backend=backend,
        n_workers=selection.n_workers,
        n_jobs=selection.n_jobs,
        max_in_flight=max_in_flight,
        batch_size=batch_size,
        timeout=options.timeout,
        ordered=options.return_as != "generator_unordered",
        worker_settings=_worker_settings(settings, backend),
        reporters=options.observation.reporters_for_run(int(settings.verbose)),
        expected_total=expected_total,
        resilience=options.resilience,
    )


def _worker_settings(settings: Settings, backend: Backend) -> Settings:
    """The settings a task sees inside a worker: the caller's, minus the outer choice of
    backend and n_jobs (a nested call uses the backend's nested backend instead)."""
    return dataclasses.replace(
        settings,
        backend=backend.capabilities.nested_backend,
        n_jobs=None,
        require=None,
        prefer=None,
        backend_params={},
        worker_of=backend.name,
    )


def _check_return_as(value: Any) -> ReturnAs:
    if value not in RETURN_AS:
        # joblib's phrase first ("Expected `return_as` parameter ..."); code matches on it.
        raise ConfigurationError(
            'Expected `return_as` parameter to be a string equal to "list","generator" or '
            f'"generator_unordered", but got {value} instead: return_as must be one of '
            f"{RETURN_AS}"
        )
    return value  # type: ignore[no-any-return]


def _check_timeout(value: object) -> float | None:
    if value is None:
        return None
    seconds = None if isinstance(value, bool) or not isinstance(value, int | float) else value
    if seconds is None or not seconds > 0:
        raise ConfigurationError(
            f"timeout must be a positive number of seconds or None, got {value!r}"
        )
    return float(seconds)


def _check_batch_size(value: object) -> int | None:
    if value == "auto":
        return None
    number = as_integer(value)
    if number is None or number < 1:
        raise ConfigurationError(f"batch_size must be 'auto' or a positive integer, got {value!r}")
    return number


def _check_pre_dispatch(value: object) -> int | str:
    if isinstance(value, str):
        if value.strip() != "all":
            _evaluate_pre_dispatch(value, 1)
        return value
    number = as_integer(value)
    if number is None or number < 1:
        raise ConfigurationError(
            f"pre_dispatch must be a positive integer, 'all', or an expression in n_jobs such "
            f"as '2 * n_jobs'; got {value!r}"
        )
    return number


@functools.lru_cache(maxsize=64)
def _evaluate_pre_dispatch(expression: str, n_jobs: int) -> float:
    # Parsing "2 * n_jobs" (the default) cost ~20 us, twice per Parallel call; remembered.
    return evaluate_expression(expression, {"n_jobs": n_jobs}, what="pre_dispatch")


def _batches_in_flight(pre_dispatch: int | str, n_workers: int) -> int | None:
    if isinstance(pre_dispatch, int):
        return max(pre_dispatch, 1)
    if pre_dispatch.strip() == "all":
        return None
    value = _evaluate_pre_dispatch(pre_dispatch, n_workers)
    if not value >= 1:
        raise ConfigurationError(
            f"pre_dispatch={pre_dispatch!r} gives {value} with n_jobs={n_workers}; it must "
            "keep at least one batch in flight"
        )
    return math.ceil(value)
