# quick_joblib.py from seed 000, with `joblib` replaced by `forklift` and nothing else changed
# (FORKLIFT_EXAMPLE_SCALE shortens the sleep when the test suite runs it).
import os
import time
from forklift import Parallel, delayed
def slow_square(n: int) -> int:
    """Simulate a slow computation."""
    time.sleep(0.5 * float(os.environ.get("FORKLIFT_EXAMPLE_SCALE", "1")))
    return n * n
numbers = list(range(8))
# Sequential -- takes 8 * 0.5 = 4 seconds
start = time.perf_counter()
sequential = [slow_square(n) for n in numbers]
seq_time = time.perf_counter() - start
print(f"Sequential: {sequential} in {seq_time:.2f}s")
# Parallel -- uses all available CPU cores
start = time.perf_counter()
parallel = Parallel(n_jobs=-1)(delayed(slow_square)(n) for n in numbers)
par_time = time.perf_counter() - start
print(f"Parallel: {parallel} in {par_time:.2f}s")
print(f"Speedup: {seq_time / par_time:.1f}x")
