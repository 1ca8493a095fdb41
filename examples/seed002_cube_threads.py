# From seed 002 ("Using joblib"): the cube example, as hand-written tuples and on threads,
# with `joblib` replaced by `forklift` and nothing else changed.
from forklift import Parallel, delayed

def cube(x):
    return x**3

result = Parallel(n_jobs=3)(delayed(cube)(i) for i in range(1,1000))
print(result[:5])

result = Parallel(n_jobs=3)((cube, (i,), {}) for i in range(1,1000))
print(result[:5])

result = Parallel(n_jobs=3, prefer="threads")(delayed(cube)(i) for i in range(1,1000))
print(result[:5])
