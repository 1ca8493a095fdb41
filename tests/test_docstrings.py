"""The docstring examples of src/forklift run here, under the suite's leak guard.

Every module of the installed package is searched for doctests (``>>>`` examples), and each
docstring that has some is one test. They run here rather than through pytest's own
``--doctest-modules`` on ``src/forklift`` because tests/conftest.py - the fixture that fails a
test leaving threads, processes or temp files behind - applies only to items under tests/.

A second test requires an example in the docstring of every public name: ``forklift.__all__``,
``forklift.errors.__all__`` and ``forklift.integrations.joblib.__all__``, except the few
listed in :data:`NO_EXAMPLE` with the reason. Exception and warning classes are exempt: the
useful example of an error is the call that raises it, which many have; one that only shows
``issubclass(...)`` repeats the class statement.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
from types import ModuleType

import pytest

import forklift
import forklift.errors

# Modules whose examples need an optional extra (`make` installs every extra).
NEEDS_MODULE = {"forklift.integrations.joblib": "joblib"}

# Public names without an example in their docstring, and why.
NO_EXAMPLE = {
    "SAFE_GLOBALS": "a frozenset constant cannot carry a docstring; the examples of load() "
    "and UnsafeLoadError use it",
}

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


def _public_names() -> list[tuple[str, object]]:
    import forklift.integrations.joblib as bridge

    names = {name: getattr(forklift, name) for name in forklift.__all__}
    names.update((name, getattr(forklift.errors, name)) for name in forklift.errors.__all__)
    names.update((f"integrations.joblib.{name}", getattr(bridge, name)) for name in bridge.__all__)
    return sorted(names.items())


PUBLIC = _public_names()


@pytest.mark.parametrize(("name", "value"), PUBLIC, ids=[name for name, _ in PUBLIC])
def test_public_name_has_an_example(name: str, value: object) -> None:
    if isinstance(value, type) and issubclass(value, BaseException):
        return  # exempt (see the module docstring)
    # The object's own __doc__: inspect.getdoc would borrow a base class's docstring.
    own_doc = vars(value).get("__doc__") if isinstance(value, type) else value.__doc__
    has_example = isinstance(own_doc, str) and ">>>" in own_doc
    if name in NO_EXAMPLE:
        assert not has_example, f"{name} has an example now: remove it from NO_EXAMPLE"
        return
    assert has_example, (
        f"{name} has no '>>>' example in its docstring; add a short one (a Google-style "
        f"'Examples:' section) or list it in NO_EXAMPLE in {__name__} with the reason"
    )


def test_exemptions_are_public_names() -> None:
    assert set(NO_EXAMPLE) <= {name for name, _ in PUBLIC}
