"""A task's exception reaches the caller as itself: its class (even one of the caller's
``__main__``), its attributes, its chain - or, when it truly cannot be rebuilt, as a stand-in
that says so and still matches ``except TheClass``."""

from __future__ import annotations

import copyreg
import errno
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from tests.script_checks import run_check_script

from forklift.pool.error_transport import ErrorParcel, attach_remote_traceback, pack_error

SCRIPT = Path(__file__).parent / "scripts" / "raise_main_errors.py"


def _run_script(backend: str, tmp_path: Path) -> dict[str, dict[str, Any]]:
    return run_check_script(SCRIPT, backend, str(tmp_path / "attempted"), cwd=tmp_path)


# The "multiprocessing" backend's worker side is tested in one process below: its stdlib pool
# can hang in terminate() after a failed call (a bug of that backend, not of the transport).
@pytest.fixture(scope="module", params=["loky"])
def received(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    backend = request.param
    return backend, _run_script(backend, tmp_path_factory.mktemp(backend))


@pytest.mark.timeout(300)
def test_a_main_class_is_the_callers_class(received: Any) -> None:
    _, checks = received
    assert checks["my_error"] == {"exact": True, "caught": True, "text": "boom 1"}


@pytest.mark.timeout(300)
def test_an_init_with_other_parameters_keeps_class_and_attributes(received: Any) -> None:
    _, checks = received
    assert checks["code_error"] == {"exact": True, "code": 1, "msg": "bad", "text": "1: bad"}


@pytest.mark.timeout(300)
def test_an_error_that_cannot_be_rebuilt_says_so_and_still_matches(received: Any) -> None:
    _, checks = received
    strict = checks["strict"]
    assert strict["caught"] is True
    assert strict["name"] == "Strict"
    assert "1: bad" in strict["text"]
    assert "could not rebuild this exception" in strict["text"]


@pytest.mark.timeout(300)
def test_an_unpicklable_attribute_travels_as_its_repr(received: Any) -> None:
    _, checks = received
    holds = checks["holds_lock"]
    assert holds["exact"] is True
    assert holds["count"] == 7
    assert "lock" in holds["lock"]
    if sys.version_info >= (3, 11):
        assert any("attribute 'lock'" in note for note in holds["notes"])


@pytest.mark.timeout(300)
def test_cause_and_context_chains_arrive(received: Any) -> None:
    _, checks = received
    assert checks["chained"] == {
        "exact": True,
        "cause": "CodeError",
        "cause_code": 1,
        "context": "KeyError",
        "context_args": ["missing"],
        "tail": "RemoteTraceback",  # the worker's traceback text, chained last
    }


@pytest.mark.timeout(300)
def test_task_failure_and_retry_on_see_the_class(received: Any) -> None:
    _, checks = received
    assert checks["task_failure"] == {"is_failure": True, "exact": True, "code": 0}
    assert checks["retry_on"] == {"outcome": [True], "error": None}


@pytest.mark.timeout(300)
def test_a_main_class_of_a_result_is_the_callers_class_untouched(received: Any) -> None:
    _, checks = received
    # Not a copy, and its methods not replaced by the worker's copies (whose globals are not
    # the script's: the caller's counter would stay at 0).
    assert checks["result_class"] == {"exact": True, "method_kept": True, "bumped": 1}


@pytest.mark.timeout(300)
def test_process_pool_submit_keeps_the_class(received: Any) -> None:
    backend, checks = received
    if backend != "loky":
        pytest.skip("ProcessPool is the loky backend's pool")
    assert checks["pool_submit"] == {"exact": True, "code": 5}


# -- in one process: the parcel's own rules ------------------------------------------------------
class _TwoArguments(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code


def _round_trip(error: BaseException) -> BaseException:
    parcel = pack_error(error)
    assert isinstance(parcel, ErrorParcel)
    rebuilt = pickle.loads(pickle.dumps(parcel))
    assert isinstance(rebuilt, BaseException)
    return rebuilt


def test_builtin_errors_keep_their_own_reduction() -> None:
    rebuilt = _round_trip(FileNotFoundError(errno.ENOENT, "No such file", "/nowhere"))
    assert type(rebuilt) is FileNotFoundError
    assert rebuilt.filename == "/nowhere"
    assert rebuilt.errno == errno.ENOENT


def test_an_importable_class_with_other_parameters() -> None:
    rebuilt = _round_trip(_TwoArguments(4, "no"))
    assert type(rebuilt) is _TwoArguments
    assert rebuilt.code == 4
    assert str(rebuilt) == "4: no"


def test_a_cycle_in_the_chain_is_cut() -> None:
    first, second = ValueError("first"), KeyError("second")
    first.__context__ = second
    second.__context__ = first
    rebuilt = _round_trip(first)
    assert type(rebuilt.__context__) is KeyError
    assert rebuilt.__context__.__context__ is None


def test_a_cause_that_is_also_the_context_stays_one_object() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise _TwoArguments(1, "outer") from inner
    except _TwoArguments as outer:
        rebuilt = _round_trip(outer)
    assert type(rebuilt.__cause__) is KeyError
    assert rebuilt.__context__ is rebuilt.__cause__
    assert rebuilt.__suppress_context__ is True


def test_the_chain_survives_a_reducer_registered_for_every_exception_class() -> None:
    # dask.distributed installs tblib's pickling support, which registers a reducer for every
    # exception class there is at that moment (the parcel class included).
    from tblib import pickling_support

    pickling_support.install(ErrorParcel)
    try:
        try:
            try:
                raise KeyError("inner")
            except KeyError as inner:
                raise ValueError("outer") from inner
        except ValueError as outer:
            rebuilt = _round_trip(outer)
    finally:
        copyreg.dispatch_table.pop(ErrorParcel, None)
    assert type(rebuilt.__cause__) is KeyError
    assert rebuilt.__context__ is rebuilt.__cause__


def test_an_unpicklable_argument_travels_as_its_repr() -> None:
    lock = threading.Lock()
    rebuilt = _round_trip(ValueError("with a lock", lock))
    assert type(rebuilt) is ValueError
    assert rebuilt.args == ("with a lock", repr(lock))


def _raise_two_arguments() -> None:
    raise _TwoArguments(9, "from the pool")


def test_the_multiprocessing_backends_worker_packs_the_error() -> None:
    import cloudpickle

    from forklift.config import Settings
    from forklift.parallel.backends.base import Batch
    from forklift.parallel.backends.multiprocessing import _run_pickled_batch

    batch = Batch(0, 0, [(_raise_two_arguments, (), {})], Settings())
    outcome = pickle.loads(_run_pickled_batch(cloudpickle.dumps(batch)))
    assert type(outcome.error) is _TwoArguments
    assert outcome.error.code == 9


_REBUILD_ALLOWED = [True]


def _rebuild_guarded(message: str) -> _Guarded:
    if not _REBUILD_ALLOWED[0]:
        raise RuntimeError("this process cannot rebuild it")
    return _Guarded(message)


class _Guarded(Exception):
    """Rebuilds where it was raised, not where it is received (e.g. a module missing there)."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _rebuild_guarded, (str(self),)


def test_an_error_whose_own_pickle_fails_at_the_receiver_is_a_stand_in() -> None:
    data = pickle.dumps(pack_error(_Guarded("the message")))
    _REBUILD_ALLOWED[0] = False
    try:
        rebuilt = pickle.loads(data)
    finally:
        _REBUILD_ALLOWED[0] = True
    assert isinstance(rebuilt, _Guarded)
    assert type(rebuilt) is not _Guarded  # a stand-in subclass: it says so
    assert "the message" in str(rebuilt)
    assert "this process cannot rebuild it" in str(rebuilt)


def test_the_multiprocessing_backend_names_an_unpicklable_result_before_an_error() -> None:
    import cloudpickle

    from forklift.config import Settings
    from forklift.errors import TaskPicklingError
    from forklift.parallel.backends.base import Batch
    from forklift.parallel.backends.multiprocessing import _run_pickled_batch

    calls = [(threading.Lock, (), {}), (_raise_two_arguments, (), {})]
    batch = Batch(0, 0, calls, Settings())
    outcome = pickle.loads(_run_pickled_batch(cloudpickle.dumps(batch)))
    # The first problem in the batch's order is the lock that cannot travel back.
    assert isinstance(outcome.error, TaskPicklingError)
    assert outcome.error_task == 0
    assert "lock" in str(outcome.error)


def test_the_remote_traceback_is_chained_once_at_the_end() -> None:
    from forklift.errors import RemoteTraceback

    error = ValueError("outer")
    error.__cause__ = KeyError("inner")
    attach_remote_traceback(error, RemoteTraceback("text"))
    attach_remote_traceback(error, RemoteTraceback("again"))
    assert isinstance(error.__cause__.__cause__, RemoteTraceback)
    assert error.__cause__.__cause__.traceback_text == "text"
    assert error.__cause__.__cause__.__cause__ is None
