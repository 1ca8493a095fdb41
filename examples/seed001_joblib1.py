#name joblib1.py -- seed 001's first example, with `joblib` replaced by `forklift` and
# nothing else changed but the first import (FORKLIFT_EXAMPLE_SCALE shortens the sleeps).
import _scale  # noqa: F401
import os
import time
from forklift import Parallel, delayed

def prod(x):
    square = 0
    for i in x:
        time.sleep(1)
        square += i * i
        print(f"Now Process {os.getpid()}  | is calculating square {i}")
    return square

x = [1, 2, 3, 4, 5, 6, 7, 8, 9]

# Split list into chunks for parallel processing
chunks = [x[0:5],x[6:8] ]  # split into 4 chunks

import multiprocessing as mp
num_cores = mp.cpu_count()

results = Parallel(n_jobs=num_cores-1,verbose=1)(delayed(prod)(chunk) for chunk in chunks)

print("Partial results:", results)
print("Total sum of squares:", sum(results))

# "The function can be done using pool workers" (seed 001, as written there)
with Parallel(n_jobs=num_cores-1) as parallel:
  results = parallel(n_jobs=num_cores-1,verbose=1)(delayed(prod)(chunk) for chunk in chunks)
print("Pool workers:", results)

# "it can be done via require='sharedmem'" (seed 001, as written there)
results = Parallel(n_jobs=num_cores-1, require='sharedmem',verbose=1)(delayed(prod)(chunk) for chunk in chunks)
print("Shared memory:", results)
