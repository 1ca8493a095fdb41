# A progress bar of completed tasks, and a timeline page of the run.
import os
import time

from forklift import Parallel, delayed

scale = float(os.environ.get("FORKLIFT_EXAMPLE_SCALE", "1"))


def work(i):
    time.sleep(0.05 * scale * (1 + i % 3))
    return i


results = Parallel(n_jobs=2, backend="threading", progress=True, trace="timeline.html")(
    delayed(work)(i) for i in range(40)
)
print(f"{len(results)} tasks done; open timeline.html to see when each ran on which worker")
