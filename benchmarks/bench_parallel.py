"""Engine overhead: many tiny tasks on threads, and the sequential backend's cost per task."""

from __future__ import annotations

from multiprocessing.pool import ThreadPool

from benchmarks.harness import Scenario, time_call


def tiny(x: int) -> int:
    return x


def scenarios(quick: bool) -> list[Scenario]:
    import joblib

    import forklift

    n = 2_000 if quick else 20_000
    repeats = 2 if quick else 7

    def forklift_threads() -> float:
        return time_call(
            lambda: forklift.Parallel(n_jobs=2, backend="threading")(
                forklift.delayed(tiny)(i) for i in range(n)
            )
        )

    def joblib_threads() -> float:
        return time_call(
            lambda: joblib.Parallel(n_jobs=2, backend="threading")(
                joblib.delayed(tiny)(i) for i in range(n)
            )
        )

    def threadpool_map() -> float:
        with ThreadPool(2) as pool:
            return time_call(lambda: pool.map(tiny, range(n), chunksize=max(n // 8, 1)))

    def forklift_sequential() -> float:
        return time_call(
            lambda: forklift.Parallel(n_jobs=1)(forklift.delayed(tiny)(i) for i in range(n))
        )

    def joblib_sequential() -> float:
        return time_call(
            lambda: joblib.Parallel(n_jobs=1)(joblib.delayed(tiny)(i) for i in range(n))
        )

    def plain_loop() -> float:
        return time_call(lambda: [tiny(i) for i in range(n)])

    return [
        Scenario(
            name=f"{n:,} tiny tasks, threading n_jobs=2",
            runners={
                "forklift": forklift_threads,
                "joblib": joblib_threads,
                "ThreadPool.map": threadpool_map,
            },
            target=0.05,
            repeats=repeats,
        ),
        Scenario(
            name=f"{n:,} tiny tasks, sequential (n_jobs=1)",
            runners={
                "forklift": forklift_sequential,
                "joblib": joblib_sequential,
                "plain loop": plain_loop,
            },
            repeats=repeats,
        ),
    ]
