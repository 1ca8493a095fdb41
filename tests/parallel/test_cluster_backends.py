"""The cluster backends without a cluster: missing extras, parameters, argument sharing,
and the translation of the engines' own errors (real exception classes, no cluster needed)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from forklift import Parallel, delayed, parallel_config
from forklift.config import Settings
from forklift.errors import (
    ClusterCancelledError,
    ClusterConnectionError,
    ClusterError,
    ClusterWorkerLostError,
    ConfigurationError,
    MissingDependencyError,
    ParallelStateError,
    TaskPicklingError,
    TerminatedWorkerError,
)
from forklift.parallel.backends._remote import (
    engine_failures,
    pack_batch,
    run_packed,
    translate,
    unpack_outcome,
)
from forklift.parallel.backends._shared_arguments import (
    LargeArguments,
    Placeholder,
    nbytes_of,
    parse_share_options,
)
from forklift.parallel.backends.base import Batch

HIDE = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {hidden!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Hide())
for loaded in [m for m in sys.modules if m.partition(".")[0] in {hidden!r}]:
    del sys.modules[loaded]
"""


@pytest.mark.parametrize(
    ("backend", "hidden", "extra"),
    [
        ("dask", ["distributed"], "dask"),
        ("dask", ["dask", "distributed"], "dask"),
        ("ray", ["ray"], "ray"),
    ],
)
def test_missing_extra_names_the_pip_install(backend: str, hidden: list[str], extra: str) -> None:
    script = HIDE.format(hidden=set(hidden)) + textwrap.dedent(f"""
        import forklift
        from forklift.errors import MissingDependencyError
        for attempt in (
            lambda: forklift.Parallel(backend={backend!r}),
            lambda: forklift.parallel_config(backend={backend!r}).__enter__() and
                    forklift.Parallel(),
        ):
            try:
                attempt()
            except MissingDependencyError as error:
                assert isinstance(error, ImportError) and isinstance(error, ValueError)
                print("MESSAGE:", error)
            else:
                raise SystemExit("no error")
    """)
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    messages = [line for line in completed.stdout.splitlines() if line.startswith("MESSAGE:")]
    assert len(messages) == 2
    for message in messages:
        assert f"pip install forklift[{extra}]" in message


def test_forklift_imports_without_the_engines() -> None:
    script = HIDE.format(hidden={"dask", "distributed", "ray"}) + textwrap.dedent("""
        import forklift, forklift.parallel.backends.dask, forklift.parallel.backends.ray
        print(forklift.Parallel(n_jobs=2, backend="threading")(
            forklift.delayed(abs)(-i) for i in range(3)))
    """)
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "[0, 1, 2]" in completed.stdout


def test_dask_without_a_client_says_how_to_make_one() -> None:
    distributed = pytest.importorskip("distributed")
    try:
        distributed.get_client()
    except ValueError:
        pass
    else:  # pragma: no cover - a client leaked from another test
        pytest.skip("a dask client is current in this process")
    with pytest.raises(ConfigurationError, match=r"Client\(\)"):
        Parallel(backend="dask")
    # n_jobs given: no capacity lookup when Parallel is made, so it fails when it starts.
    with (
        parallel_config(backend="dask", n_jobs=2),
        pytest.raises(ConfigurationError, match=r"needs a dask\.distributed client"),
    ):
        Parallel()(delayed(abs)(1) for _ in range(2))
    with pytest.raises(ConfigurationError, match="does not take"):
        Parallel(backend="dask", n_jobs=2, no_such_option=1)
    with pytest.raises(ConfigurationError, match=r"distributed\.Client"):
        Parallel(backend="dask", n_jobs=2, client="tcp://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match="scatter must be"):
        Parallel(backend="dask", n_jobs=2, scatter="yes")
    with pytest.raises(ConfigurationError, match="scatter_threshold"):
        Parallel(backend="dask", n_jobs=2, scatter_threshold=[1])


@pytest.mark.parametrize(
    ("module", "backend_class", "options"),
    [
        ("distributed", "forklift.parallel.backends.dask:DaskBackend", "client, address, scatter"),
        ("ray", "forklift.parallel.backends.ray:RayBackend", "address, scatter, scatter_threshold"),
    ],
)
def test_cluster_backends_check_options_and_refuse_work_before_start(
    module: str, backend_class: str, options: str
) -> None:
    # Made directly (no cluster is contacted until start): the checks the two backends share.
    pytest.importorskip(module)
    module_name, class_name = backend_class.split(":")
    backend_type = getattr(importlib.import_module(module_name), class_name)
    name = backend_type.name
    with pytest.raises(ConfigurationError, match=rf"{name} backend does not take \['bad'\]; "):
        backend_type(bad=1)
    with pytest.raises(ConfigurationError, match=rf"it takes {options}"):
        backend_type(bad=1)
    with pytest.raises(
        ConfigurationError, match=rf"the {name} backend's address must be .*, got 7"
    ):
        backend_type(address=7)
    backend = backend_type(scatter=False)
    assert backend.effective_n_jobs(3) == 3  # a positive n_jobs asks no cluster
    assert backend.n_scattered == 0
    batch = Batch(0, 0, [(abs, (-1,), {})], Settings())
    with pytest.raises(ParallelStateError, match=rf"the {name} backend was not started"):
        backend.submit(batch)


def test_missing_dependency_is_not_claimed_for_other_import_errors() -> None:
    # An ImportError of some other module (a broken install) must not be disguised as
    # "install the extra".
    from forklift.parallel.backends.registry import _optional_extra

    with pytest.raises(ModuleNotFoundError), _optional_extra("dask", ("dask", "distributed")):
        raise ModuleNotFoundError("No module named 'toolz'", name="toolz")
    with pytest.raises(MissingDependencyError), _optional_extra("dask", ("dask", "distributed")):
        raise ModuleNotFoundError("No module named 'distributed.x'", name="distributed.x")


# -- sharing large arguments ---------------------------------------------------------------
def test_nbytes_of_measures_buffers_only() -> None:
    assert nbytes_of(b"abc") == 3
    assert nbytes_of(bytearray(5)) == 5
    assert nbytes_of(memoryview(b"abcd")) == 4
    assert nbytes_of(np.zeros(10)) == 80
    assert nbytes_of([1, 2, 3]) is None
    assert nbytes_of("text") is None

    class Broken:
        @property
        def nbytes(self) -> int:
            raise RuntimeError("broken")

    class Liar:
        nbytes = "lots"

    assert nbytes_of(Broken()) is None
    assert nbytes_of(Liar()) is None


def test_parse_share_options() -> None:
    assert parse_share_options("dask", "1M", True) == (1024 * 1024, [])
    assert parse_share_options("dask", 10, None) == (10, [])
    assert parse_share_options("dask", None, True) == (None, [])
    assert parse_share_options("dask", "1M", False) == (None, [])
    marker = object()
    assert parse_share_options("dask", "1M", [marker]) == (1024 * 1024, [marker])
    with pytest.raises(ConfigurationError):
        parse_share_options("dask", True, True)


def test_large_arguments_are_shared_once_and_restored_in_the_worker() -> None:
    shared: list[object] = []

    def share(value: object) -> str:
        shared.append(value)
        return f"handle-{len(shared)}"

    big = np.arange(1000)  # 8000 bytes
    small = np.arange(3)
    large = LargeArguments(share, threshold=1000)
    calls = [(np.sum, (big,), {}), (np.add, (small,), {"out": None, "y": big})]
    extracted, handles = large.extract(calls)
    assert isinstance(extracted[0][1][0], Placeholder)
    assert extracted[1][1][0] is small
    assert isinstance(extracted[1][2]["y"], Placeholder)
    assert list(handles.values()) == ["handle-1"] and len(shared) == 1
    _, handles_again = large.extract([(np.sum, (big,), {})])
    assert handles_again == handles and len(shared) == 1 and large.n_shared == 1

    # The worker side puts the values back and runs the calls.
    batch = Batch(0, 0, [(np.sum, (big,), {}), (len, (big,), {})], Settings())
    shipped, used = large.extract(batch.calls)
    values = {key: big for key in used}
    outcome = unpack_outcome(run_packed(pack_batch(batch, shipped), values, "dask"))
    assert outcome.error is None and outcome.results == [big.sum(), 1000]

    large.clear()
    large.extract([(np.sum, (big,), {})])
    assert len(shared) == 2


def test_sharing_off_leaves_calls_alone() -> None:
    big = np.arange(1000)
    large = LargeArguments(lambda value: value, threshold=None)
    calls = [(np.sum, (big,), {})]
    assert large.extract(calls) == (calls, {})
    forced = LargeArguments(lambda value: "h", threshold=None, always=[big])
    extracted, handles = forced.extract(calls)
    assert isinstance(extracted[0][1][0], Placeholder) and list(handles.values()) == ["h"]


def test_unpicklable_result_is_reported_not_lost() -> None:
    batch = Batch(0, 0, [(threading.Lock, (), {})], Settings())
    outcome = unpack_outcome(run_packed(pack_batch(batch, batch.calls), {}, "ray"))
    # As from the process pool: a TaskPicklingError naming the function.
    assert isinstance(outcome.error, TaskPicklingError)
    assert "the result of _thread.allocate_lock() could not be pickled" in str(outcome.error)


# -- the engines' errors, translated ---------------------------------------------------------
def test_dask_errors_become_forklift_errors() -> None:
    pytest.importorskip("distributed")
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    from forklift.parallel.backends.dask import translate_dask_error

    cases = [
        (KilledWorker("key", "tcp://w:1", 3), ClusterWorkerLostError),
        (CancelledError(), ClusterCancelledError),
        (CommClosedError("closed"), ClusterConnectionError),
        (OSError("connection refused"), ClusterConnectionError),
        (ModuleNotFoundError("No module named 'mine'"), ClusterError),
    ]
    for error, expected in cases:
        translated = translate_dask_error(error, "forklift-f-1")
        assert type(translated) is expected and translated.__cause__ is error
        assert "forklift-f-1" in str(translated)
    assert isinstance(translate_dask_error(cases[0][0]), TerminatedWorkerError)


def test_ray_errors_become_forklift_errors() -> None:
    pytest.importorskip("ray")
    import ray.exceptions

    from forklift.parallel.backends.ray import translate_ray_error

    cases = [
        (ray.exceptions.WorkerCrashedError(), ClusterWorkerLostError),
        (ray.exceptions.TaskCancelledError(), ClusterCancelledError),
        (ray.exceptions.RaySystemError("boom"), ClusterError),
        (ConnectionError("gone"), ClusterConnectionError),
    ]
    for error, expected in cases:
        translated = translate_ray_error(error)
        assert type(translated) is expected and translated.__cause__ is error


def test_objects_no_batch_needs_are_let_go_beyond_the_budget() -> None:
    shared: list[object] = []

    def share(value: object) -> int:
        shared.append(value)
        return len(shared)

    # Every task brings its own 8 kB array (a generator of arrays): memory must stay bounded.
    large = LargeArguments(share, threshold=1000, keep_bytes=20_000)
    for i in range(50):
        _, used = large.extract([(np.sum, (np.full(1000, i),), {})])
        large.release(used)
        assert large.n_held <= 3  # 20 kB budget: two unused 8 kB arrays, plus the newest
    assert len(shared) == 50

    # One array used by every batch is shared once, even when no batch holds it for a while.
    common = np.arange(1000)
    before = len(shared)
    for _ in range(10):
        _, used = large.extract([(np.sum, (common,), {})])
        large.release(used)
    assert len(shared) == before + 1

    # In use by a batch in flight: never dropped, whatever the budget.
    tight = LargeArguments(share, threshold=1000, keep_bytes=0)
    first = np.arange(1000)
    _, in_flight = tight.extract([(np.sum, (first,), {})])
    for i in range(5):
        _, used = tight.extract([(np.sum, (np.full(1000, i),), {})])
        tight.release(used)
    assert tight.n_held == 1
    _, again = tight.extract([(np.sum, (first,), {})])
    assert again == in_flight  # still the same shared copy
    tight.release(in_flight)
    tight.release(again)
    assert tight.n_held == 0

    # Objects named in scatter=[...] stay for the whole lifetime.
    forced = LargeArguments(share, threshold=None, always=[first], keep_bytes=0)
    _, used = forced.extract([(np.sum, (first,), {})])
    forced.release(used)
    assert forced.n_held == 1


# -- a task's error travels as from the process pool -------------------------------------------
class _CodeError(Exception):
    """Its __init__ takes other arguments than it hands on: plain unpickling fails."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code


class _HoldsLock(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()
        self.count = 7


def _raise(kind: str) -> None:
    if kind == "code":
        raise _CodeError(4, "bad")
    raise _HoldsLock("locked")


def test_task_errors_keep_their_class_and_fields_on_the_trip() -> None:
    batch = Batch(0, 0, [(_raise, ("code",), {})], Settings())
    error = unpack_outcome(run_packed(pack_batch(batch, batch.calls), {}, "dask")).error
    assert type(error) is _CodeError and error.code == 4 and str(error) == "4: bad"

    batch = Batch(0, 0, [(_raise, ("lock",), {})], Settings())
    error = unpack_outcome(run_packed(pack_batch(batch, batch.calls), {}, "ray")).error
    assert type(error) is _HoldsLock and error.count == 7  # the lock travels as its repr
    assert "lock" in str(error.lock)


def test_engine_failures_are_a_table_and_a_context_manager() -> None:
    table = [((KeyError,), ClusterCancelledError, "gone{where}: {error}")]
    with (
        pytest.raises(ClusterCancelledError) as caught,
        engine_failures("dask", lambda: table, "k-1"),
    ):
        raise KeyError("x")
    error = caught.value
    assert str(error) == "gone (dask task k-1): 'x'"
    assert (error.engine, error.task_key) == ("dask", "k-1")
    assert isinstance(error.__cause__, KeyError)
    unmatched = translate("ray", table, ValueError("v"))
    assert type(unmatched) is ClusterError and unmatched.task_key is None
    assert str(unmatched) == "ray failed to run a batch: ValueError('v')"
    with pytest.raises(ConfigurationError), engine_failures("ray", lambda: table):
        raise ConfigurationError("forklift's own errors pass unchanged")
