# A long run that survives failures and restarts: retries, kept failures, a checkpoint.
# Run it twice: the second run restores every finished task instead of recomputing it.
from forklift import Memory, Parallel, TaskFailure, delayed


def simulate(seed):
    if seed % 13 == 5:
        raise ValueError(f"simulation {seed} diverged")
    return sum((seed * k) % 7 for k in range(20_000))


if __name__ == "__main__":
    checkpoint = Memory("./checkpoints", verbose=0)
    results = Parallel(n_jobs=2, checkpoint=checkpoint, on_error="return", retries=1, verbose=1)(
        delayed(simulate)(seed) for seed in range(60)
    )
    failed = [r for r in results if isinstance(r, TaskFailure)]
    print(f"{len(results) - len(failed)} simulations done, {len(failed)} failed: {failed[0]}")
