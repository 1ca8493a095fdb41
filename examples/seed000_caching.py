# caching.py from seed 000, with `joblib` replaced by `forklift` and nothing else changed
# (FORKLIFT_EXAMPLE_SCALE shortens the sleep when the test suite runs it).
import os
import time
import numpy as np
from forklift import Memory
# Create a cache directory
cache = Memory("./joblib_cache", verbose=1)
@cache.cache
def load_and_process(filepath: str, scale: float = 1.0) -> np.ndarray:
    """Simulate expensive data loading and processing."""
    print(f" [COMPUTING] Loading {filepath} with scale={scale}")
    time.sleep(2 * float(os.environ.get("FORKLIFT_EXAMPLE_SCALE", "1")))  # Simulate a 2-second load
    data = np.random.rand(1000) * scale
    return data
print("First call (cold cache):")
start = time.perf_counter()
result1 = load_and_process("data/features.npy", scale=2.0)
print(f" Took: {time.perf_counter() - start:.2f}s, mean={result1.mean():.4f}")
print("\nSecond call (cache hit):")
start = time.perf_counter()
result2 = load_and_process("data/features.npy", scale=2.0)
print(f" Took: {time.perf_counter() - start:.4f}s, mean={result2.mean():.4f}")
print("\nDifferent args (cache miss):")
start = time.perf_counter()
result3 = load_and_process("data/features.npy", scale=3.0)
print(f" Took: {time.perf_counter() - start:.2f}s, mean={result3.mean():.4f}")
