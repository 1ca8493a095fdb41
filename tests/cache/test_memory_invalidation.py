"""Code-aware invalidation, checked across real interpreter runs with edited source files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BASE = '''
import helpers

def compute(x):
    """Multiply by the helper's factor."""
    # a comment
    return helpers.factor() * x + offset(x)

def offset(x):
    return 1
'''
HELPERS = """
def factor():
    return 2
"""
RUNNER = """
import sys
sys.path.insert(0, {folder!r})
from forklift import Memory
import pipeline
memory = Memory({cache!r}, verbose=1)
compute = memory.cache(pipeline.compute{options})
open({counter!r}, "a").write("")
result = compute(5)
print("RESULT", result)
"""


def run(tmp_path: Path, options: str = "") -> tuple[int, str]:
    counter = tmp_path / "runs.txt"
    before = len(counter.read_text().splitlines()) if counter.exists() else 0
    source = (tmp_path / "pkg" / "pipeline.py").read_text()
    instrumented = source.replace(
        "def compute(x):", f"def compute(x):\n    open({str(counter)!r}, 'a').write('run\\n')", 1
    )
    (tmp_path / "pkg" / "pipeline_run.py").write_text(instrumented)
    script = RUNNER.format(
        folder=str(tmp_path / "pkg"),
        cache=str(tmp_path / "cache"),
        counter=str(counter),
        options=options,
    ).replace("import pipeline\n", "import pipeline_run as pipeline\n")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    after = len(counter.read_text().splitlines())
    result = int(done.stdout.split("RESULT")[1].split()[0])
    return after - before, done.stdout + f"RESULT={result}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "pipeline.py").write_text(BASE)
    (tmp_path / "pkg" / "helpers.py").write_text(HELPERS)
    return tmp_path


def edit(project: Path, name: str, old: str, new: str) -> None:
    path = project / "pkg" / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_unchanged_code_hits_across_runs(project: Path) -> None:
    assert run(project)[0] == 1
    assert run(project)[0] == 0


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("# a comment", "# a different comment, longer"),
        ('"""Multiply by the helper\'s factor."""', '"""Docs rewritten entirely."""'),
        ("return helpers.factor() * x + offset(x)", "return helpers.factor()*x+offset( x )"),
        ("def compute(x):\n", "\n\ndef compute(x):\n"),  # moved down: line numbers change
    ],
)
def test_comments_docstrings_and_formatting_do_not_invalidate(
    project: Path, old: str, new: str
) -> None:
    assert run(project)[0] == 1
    edit(project, "pipeline.py", old, new)
    assert run(project)[0] == 0


def test_behaviour_change_invalidates_with_a_message(project: Path) -> None:
    run(project)
    edit(project, "pipeline.py", "helpers.factor() * x", "helpers.factor() * x * 10")
    computed, output = run(project)
    assert computed == 1
    assert "RESULT=101" in output
    assert "changed" in output and "dropped its 1 cached result" in output


def test_change_in_a_called_function_of_the_same_module_invalidates(project: Path) -> None:
    run(project)
    edit(project, "pipeline.py", "    return 1\n", "    return 2\n")
    computed, output = run(project)
    assert computed == 1 and "RESULT=12" in output


def test_change_in_a_helper_module_of_the_project_invalidates(project: Path) -> None:
    # helpers.py is another top-level module beside the function's: user code all the same
    # (it is neither in site-packages nor in the standard library), so it is followed.
    run(project)
    edit(project, "helpers.py", "return 2", "return 3")
    computed, output = run(project)
    assert computed == 1 and "RESULT=16" in output
    assert "helpers.factor changed" in output


def test_pinned_version_ignores_code_and_invalidates_on_bump(project: Path) -> None:
    assert run(project, options=", version='1'")[0] == 1
    edit(project, "pipeline.py", "helpers.factor() * x", "helpers.factor() * x * 10")
    assert run(project, options=", version='1'")[0] == 0
    computed, output = run(project, options=", version='2'")
    assert computed == 1 and "version pinned" in output
