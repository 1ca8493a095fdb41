# The same Parallel call on a dask.distributed cluster: here a LocalCluster of two worker
# processes on this machine; on a real cluster, connect a Client to its scheduler instead
# (Client("tcp://scheduler:8786")) and change nothing else.
#
#   pip install forklift[dask]
import numpy as np
from distributed import Client, LocalCluster

from forklift import Parallel, delayed, parallel_config


def column_mean(data, column):
    return float(data[:, column].mean())


if __name__ == "__main__":  # dask starts its workers with "spawn": keep the guard
    data = np.arange(1_000_000, dtype=np.float64).reshape(-1, 10)  # 8 MB, sent once

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        # The current client is used; n_jobs defaults to the cluster's capacity (2 threads).
        with parallel_config(backend="dask"):
            means = Parallel()(delayed(column_mean)(data, c) for c in range(10))
        print("column means:", [round(m) for m in means])

        # Or name the client and options explicitly, e.g. to turn scattering off.
        squares = Parallel(backend="dask", client=client, scatter=False)(
            delayed(pow)(i, 2) for i in range(8)
        )
        print("squares:", squares)
