# Large arrays to process workers and back, without copies (see docs/large-arrays.md).
import os
import tempfile

import numpy as np

from forklift import Parallel, delayed

data = np.random.default_rng(0).random((2_000, 1_000))  # 16 MB, over max_nbytes="1M"


def describe(block, row):
    # In the worker, `block` is a read-only memory map of one file written once per call.
    return type(block).__name__, os.path.basename(block.filename), float(block[row].mean())


seen = Parallel(n_jobs=2)(delayed(describe)(data, row) for row in range(4))
print("workers saw:", sorted({(kind, name) for kind, name, _ in seen}))
print("row means match:", np.allclose([mean for *_, mean in seen], data[:4].mean(axis=1)))

# Where the files go: here a folder of our choice; they are removed when the call ends.
with tempfile.TemporaryDirectory() as folder:
    Parallel(n_jobs=2, temp_folder=folder)(delayed(describe)(data, 0) for _ in range(2))
    print("left in temp_folder after the call:", os.listdir(folder))


def simulate(seed):
    return np.random.default_rng(seed).standard_normal(1_000_000)  # 8 MB result


# Large results come back through shared memory: one copy, made by the worker.
results = Parallel(n_jobs=2)(delayed(simulate)(seed) for seed in range(4))
print("results:", [f"{r.shape[0]:,} values" for r in results])
