# From seed 001 ("Share data"), with `joblib` replaced by `forklift` and nothing else changed.
import numpy as np
from forklift import Parallel, delayed

# Create a random dataset
data = np.random.rand(100, 1000)

# Function to compute the mean of a specific row
def mean_row(i):
    return np.mean(data[i])

# Use joblib with shared memory to avoid copying large arrays between processes
result = Parallel(n_jobs=4, require='sharedmem')(
    delayed(mean_row)(i) for i in range(data.shape[0])
)

print(result)
