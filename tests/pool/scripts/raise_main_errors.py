"""Run as a script (so that its classes live in ``__main__``): raises them in workers and
prints, one JSON line per check, what the caller received."""

from __future__ import annotations

import json
import sys
import threading

from forklift import Parallel, TaskFailure, delayed
from forklift.pool import ProcessPool


class MyError(Exception):
    pass


class CodeError(Exception):
    def __init__(self, code, msg):
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


class Strict(Exception):
    """Cannot be rebuilt from its args: its __new__ and __init__ both want two arguments."""

    def __new__(cls, code, msg):
        return super().__new__(cls, code, msg)

    def __init__(self, code, msg):
        super().__init__(f"{code}: {msg}")


class HoldsLock(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()
        self.count = 7


COUNTER = {"bumped": 0}


class Result:
    def bump(self):
        COUNTER["bumped"] += 1


def make_result(x):
    return Result()


def raise_my_error(x):
    raise MyError(f"boom {x}")


def raise_code_error(x):
    raise CodeError(x, "bad")


def raise_strict(x):
    raise Strict(x, "bad")


def raise_holds_lock(x):
    raise HoldsLock(f"locked {x}")


def raise_chained(x):
    try:
        try:
            {}["missing"]
        except KeyError:
            raise CodeError(x, "inner")  # noqa: B904 - an implicit __context__, on purpose
    except CodeError as inner:
        raise MyError("outer") from inner


def report(check, **fields):
    print(json.dumps({"check": check, **fields}), flush=True)


def run(function, backend):
    try:
        Parallel(n_jobs=2, backend=backend)(delayed(function)(1) for _ in range(2))
    except BaseException as error:
        return error
    raise AssertionError("no error")


def flaky(path):
    # The first attempt fails with MyError (it leaves a file); retry_on must recognise it.
    import os

    if not os.path.exists(path):
        open(path, "w").close()
        raise MyError("first attempt")
    return True


def main(backend, attempted):
    method_before = Result.bump
    results = Parallel(n_jobs=2, backend=backend)(delayed(make_result)(i) for i in range(2))
    Result().bump()  # the caller's own method, with the caller's own globals
    report(
        "result_class",
        exact=all(type(result) is Result for result in results),
        method_kept=Result.bump is method_before,
        bumped=COUNTER["bumped"],
    )

    error = run(raise_my_error, backend)
    report(
        "my_error", exact=type(error) is MyError, caught=isinstance(error, MyError), text=str(error)
    )

    error = run(raise_code_error, backend)
    report(
        "code_error",
        exact=type(error) is CodeError,
        code=getattr(error, "code", None),
        msg=getattr(error, "msg", None),
        text=str(error),
    )

    error = run(raise_strict, backend)
    report(
        "strict",
        caught=isinstance(error, Strict),
        name=type(error).__name__,
        text=str(error),
    )

    error = run(raise_holds_lock, backend)
    report(
        "holds_lock",
        exact=type(error) is HoldsLock,
        count=getattr(error, "count", None),
        lock=str(getattr(error, "lock", None)),
        notes=getattr(error, "__notes__", []),
    )

    error = run(raise_chained, backend)
    cause = error.__cause__
    context = cause.__context__ if cause is not None else None
    report(
        "chained",
        exact=type(error) is MyError,
        cause=type(cause).__name__,
        cause_code=getattr(cause, "code", None),
        context=type(context).__name__,
        context_args=list(getattr(context, "args", ())),
        tail=type(context.__cause__).__name__ if context is not None else None,
    )

    results = Parallel(n_jobs=2, backend=backend, on_error="return")(
        delayed(raise_code_error)(i) for i in range(2)
    )
    failure = results[0]
    report(
        "task_failure",
        is_failure=isinstance(failure, TaskFailure),
        exact=type(getattr(failure, "exception", None)) is CodeError,
        code=getattr(getattr(failure, "exception", None), "code", None),
    )

    error_retry = None
    try:
        outcome = Parallel(n_jobs=1, backend=backend, retries=1, retry_on=(MyError,))(
            delayed(flaky)(attempted) for _ in range(1)
        )
    except BaseException as error:
        error_retry = repr(error)
        outcome = None
    report("retry_on", outcome=outcome, error=error_retry)

    if backend == "loky":
        with ProcessPool(1) as pool:
            try:
                pool.submit(raise_code_error, 5).result()
            except CodeError as error:
                report("pool_submit", exact=type(error) is CodeError, code=error.code)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
