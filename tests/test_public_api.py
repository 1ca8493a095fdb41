"""The top-level names of shared/API.md exist, import lazily, and the helpers behave."""

from __future__ import annotations

import importlib
import logging
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import forklift

API_NAMES = (
    "Parallel delayed parallel_config parallel_backend register_parallel_backend "
    "effective_n_jobs cpu_count ParallelBackendBase Memory MemorizedResult expires_after "
    "register_store_backend StoreBackendBase dump load register_compressor hash "
    "wrap_non_picklable_objects Logger PrintTime TerminatedWorkerError"
).split()


@pytest.mark.parametrize("name", API_NAMES)
def test_joblib_names_exist(name: str) -> None:
    assert getattr(forklift, name) is not None
    assert name in forklift.__all__


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Paralel'"):
        forklift.Paralel  # noqa: B018


def test_import_is_light() -> None:
    code = (
        "import sys, forklift; heavy = {'numpy', 'cloudpickle', 'concurrent.futures.process'}"
        " & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_parallel_and_the_fork_server_import_only_what_a_call_needs() -> None:
    # Every cold start pays for these imports (the caller's, then the fork server's): the
    # trace recorder (json, html, pathlib) only when a call asks for a trace.
    code = (
        "import sys; from forklift import Parallel, delayed; "
        "from forklift.pool._worker import run_worker; "
        "import forklift.parallel.backends._in_worker; "
        "unneeded = {'forklift.progress.recorder', 'forklift.progress.trace', 'json', 'html',"
        " 'pathlib'} & set(sys.modules); print(sorted(unneeded))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_wrap_non_picklable_objects() -> None:
    def local_square(x: int) -> int:  # a local function: plain pickle refuses it
        return x * x

    with pytest.raises((AttributeError, pickle.PicklingError)):
        pickle.dumps(local_square)
    wrapped = forklift.wrap_non_picklable_objects(local_square)
    assert pickle.loads(pickle.dumps(wrapped))(5) == 25
    bare = pickle.loads(
        pickle.dumps(forklift.wrap_non_picklable_objects(local_square, keep_wrapper=False))
    )
    assert bare(3) == 9 and bare.__name__ == "local_square"


def test_logger_and_print_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.INFO, logger="forklift"):
        forklift.Logger().info("hello")
    assert "hello" in caplog.text
    assert forklift.Logger(depth=1).format({"a": {"b": 1}}) == "{'a': {...}}"
    log = tmp_path / "logs" / "run.log"
    print_time = forklift.PrintTime(logfile=str(log))
    print_time("step one")
    print_time("all", total=True)
    err = capsys.readouterr().err
    assert "step one: 0.0s, 0.0min" in err and "all: 0.0" in err and "s, 0.0 min" in err
    assert "step one" in log.read_text()
    with pytest.raises(ValueError, match="not both"):
        forklift.PrintTime(logfile="a", logdir="b")


def _type_checking_imports() -> dict[str, str]:
    """``name -> module`` of the imports under ``if TYPE_CHECKING:`` in forklift/__init__.py."""
    import ast

    tree = ast.parse(Path(forklift.__file__).read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module is not None
                for alias in statement.names:
                    assert alias.asname == alias.name, f"{alias.name}: re-export it as itself"
                    found[alias.name] = statement.module
    return found


def test_the_public_names_are_written_once_and_their_copy_agrees() -> None:
    exports = forklift._EXPORTS  # type: ignore[attr-defined]
    assert forklift.__all__ == sorted(exports)
    assert len(set(forklift.__all__)) == len(forklift.__all__)
    # The static copy for type checkers: the same names, from the same modules.
    assert _type_checking_imports() == exports
    for name, module in exports.items():
        assert getattr(forklift, name) is getattr(importlib.import_module(module), name)
