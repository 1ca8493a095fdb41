"""The docstring examples of src/forklift run here, under the suite's leak guard.

Every module of the installed package is searched for doctests (``>>>`` examples), and each
docstring that has some is one test. They run here rather than through pytest's own
``--doctest-modules`` on ``src/forklift`` because tests/conftest.py - the fixture that fails a
test leaving threads, processes or temp files behind - applies only to items under tests/.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
from types import ModuleType

import pytest

import forklift

# Modules whose examples need an optional extra (the test extra installs them all).
NEEDS_MODULE = {"forklift.integrations.joblib": "joblib"}

_OPTION_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules() -> list[ModuleType]:
    names = ["forklift"] + [
        info.name
        for info in pkgutil.walk_packages(forklift.__path__, prefix="forklift.")
        if not info.name.endswith("__main__")  # importing it runs the command line
    ]
    return [importlib.import_module(name) for name in sorted(names)]


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = [test for module in _modules() for test in finder.find(module) if test.examples]
    return sorted(found, key=lambda test: test.name)


DOCTESTS = _doctests()


@pytest.mark.parametrize("test", DOCTESTS, ids=[test.name for test in DOCTESTS])
def test_docstring_examples(test: doctest.DocTest) -> None:
    for prefix, extra in NEEDS_MODULE.items():
        if test.name.startswith(prefix):
            pytest.importorskip(extra, reason=f"{prefix}'s examples need {extra}")
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=_OPTION_FLAGS)
    result = runner.run(test, out=report.write, clear_globs=True)
    if result.failed:
        pytest.fail(f"{test.name} ({test.filename}):\n{report.getvalue()}", pytrace=False)


def test_doctests_are_found() -> None:
    names = {test.name for test in DOCTESTS}
    assert {"forklift.parallel.api.Parallel", "forklift.cache.memory.Memory"} <= names
