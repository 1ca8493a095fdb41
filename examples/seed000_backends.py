# backends.py from seed 000, with `joblib` replaced by `forklift` and nothing else changed.
import time
import numpy as np
from forklift import Parallel, delayed
def cpu_task(size: int) -> float:
    """CPU-bound: pure Python computation."""
    data = list(range(size))
    return sum(x * x for x in data) / len(data)
def numpy_task(size: int) -> float:
    """Numpy releases the GIL -- threading backend works well here."""
    arr = np.random.rand(size)
    return float(np.sqrt(np.sum(arr ** 2)))
items = [100_000] * 8
# Default loky backend (separate processes, best for pure Python CPU work)
start = time.perf_counter()
results_loky = Parallel(n_jobs=4, backend="loky")(
    delayed(cpu_task)(n) for n in items
)
print(f"loky (CPU work): {time.perf_counter() - start:.2f}s")
# Threading backend (shares memory, good when GIL is released by C extensions)
start = time.perf_counter()
results_thread = Parallel(n_jobs=4, backend="threading")(
    delayed(numpy_task)(n) for n in items
)
print(f"threading (NumPy): {time.perf_counter() - start:.2f}s")
# Sequential for comparison
start = time.perf_counter()
results_seq = [numpy_task(n) for n in items]
print(f"sequential: {time.perf_counter() - start:.2f}s")
