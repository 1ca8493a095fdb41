"""Run as a script (so that its classes live in ``__main__``) with ``dask`` or ``ray``: starts
a small cluster of that engine on loopback, raises the script's exceptions in its tasks and
prints, one JSON line per check, what the caller received."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading

from forklift import Parallel, delayed


class MyError(Exception):
    pass


class CodeError(Exception):
    def __init__(self, code, msg):
        super().__init__(f"{code}: {msg}")
        self.code = code


class HoldsLock(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()
        self.count = 7


def raise_my_error(x):
    raise MyError(f"boom {x}")


def raise_code_error(x):
    raise CodeError(x, "bad")


def raise_holds_lock(x):
    raise HoldsLock(f"locked {x}")


def report(check, **fields):
    print(json.dumps({"check": check, **fields}), flush=True)


def run(function, backend):
    try:
        Parallel(n_jobs=2, backend=backend, batch_size=1)(delayed(function)(1) for _ in range(2))
    except BaseException as error:
        return error
    raise AssertionError("no error")


def checks(backend):
    error = run(raise_my_error, backend)
    report("my_error", exact=type(error) is MyError, text=str(error))
    error = run(raise_code_error, backend)
    report("code_error", exact=type(error) is CodeError, code=getattr(error, "code", None))
    error = run(raise_holds_lock, backend)
    report("holds_lock", exact=type(error) is HoldsLock, count=getattr(error, "count", None))


def main(backend):
    if backend == "dask":
        import dask
        import distributed

        with (
            tempfile.TemporaryDirectory() as folder,
            dask.config.set({"temporary-directory": folder}),
            distributed.LocalCluster(
                n_workers=1,
                processes=True,
                threads_per_worker=2,
                host="127.0.0.1",
                dashboard_address=":0",
                local_directory=folder,
            ) as cluster,
            distributed.Client(cluster),
        ):
            checks(backend)
    else:
        import ray

        # ray's socket paths must stay under 108 bytes: a short folder, removed at the end.
        folder = tempfile.mkdtemp(prefix="fkray-", dir="/tmp")
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=folder)
            try:
                checks(backend)
            finally:
                ray.shutdown()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1])
