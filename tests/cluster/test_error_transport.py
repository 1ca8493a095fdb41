"""A task's exception from a dask or ray task reaches the caller as from the process pool: its
class (one defined in the caller's script included), attributes that do not pickle as their
repr, arguments its ``__init__`` does not take back. The classes must live in a script's
``__main__``, so a script starts its own small cluster and reports what it received."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest
from tests.script_checks import run_check_script

pytestmark = pytest.mark.cluster

SCRIPT = Path(__file__).parent / "scripts" / "raise_main_errors.py"


@pytest.fixture(scope="module", params=["dask", "ray"])
def received(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    engine = request.param
    if importlib.util.find_spec("distributed" if engine == "dask" else "ray") is None:
        pytest.skip(f"{engine} is not installed")
    folder = tmp_path_factory.mktemp(engine)
    return run_check_script(SCRIPT, engine, cwd=folder, env=dict(os.environ, TMPDIR=str(folder)))


@pytest.mark.timeout(300)
def test_a_script_class_is_the_callers_class(received: dict[str, Any]) -> None:
    assert received["my_error"] == {"exact": True, "text": "boom 1"}


@pytest.mark.timeout(300)
def test_an_init_with_other_parameters_keeps_class_and_fields(received: dict[str, Any]) -> None:
    assert received["code_error"] == {"exact": True, "code": 1}  # was a ClusterError


@pytest.mark.timeout(300)
def test_an_unpicklable_attribute_does_not_lose_the_error(received: dict[str, Any]) -> None:
    assert received["holds_lock"] == {"exact": True, "count": 7}  # was a RuntimeError
