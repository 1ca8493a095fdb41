# "Caching Computations" from seed 001, with `joblib` replaced by `forklift` and nothing else
# changed; the names it takes from the seed's earlier sections (os, time, x) are set first.
# FORKLIFT_EXAMPLE_SCALE shortens the sleeps when the test suite runs it.
import os
import time
_scale = float(os.environ.get("FORKLIFT_EXAMPLE_SCALE", "1"))
x = [1, 2, 3, 4, 5, 6, 7, 8, 9]
_sleep = time.sleep
time.sleep = lambda seconds: _sleep(seconds * _scale)

from forklift import Memory
mem = Memory(location='cachedir', verbose=0)
@mem.cache
def func_time(x):
    time.sleep(4)
    return x ** 2

@mem.cache
def prod(x):
    square = 0
    start_parallel = time.time()
    for i in x:
        time.sleep(1)
        square += i * i
        print(f"Now Process {os.getpid()}  | is calculating square {i}")
    end_parallel = time.time()
    print(f"Total time:  {end_parallel-start_parallel}")
    return square


print(prod(x))
print(prod(x))
