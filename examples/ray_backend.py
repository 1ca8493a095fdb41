# The same Parallel call on ray: here a local ray instance with 2 CPUs; on a cluster, pass
# address="auto" (or "ray://head:10001") to Parallel/parallel_config, or call ray.init()
# yourself first, and change nothing else.
#
#   pip install forklift[ray]
import numpy as np
import ray

from forklift import Parallel, delayed, parallel_config


def column_mean(data, column):
    return float(data[:, column].mean())


if __name__ == "__main__":
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        data = np.arange(1_000_000, dtype=np.float64).reshape(-1, 10)  # 8 MB, put once
        # n_jobs defaults to the cluster's capacity (2 CPUs here).
        with parallel_config(backend="ray"):
            means = Parallel()(delayed(column_mean)(data, c) for c in range(10))
        print("column means:", [round(m) for m in means])

        squares = Parallel(backend="ray", n_jobs=2)(delayed(pow)(i, 2) for i in range(8))
        print("squares:", squares)
    finally:
        ray.shutdown()
