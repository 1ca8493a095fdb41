"""Functions a cached function calls are part of its key wherever the user's code lives: a
helper module beside the script, another package of the project. Real files, real runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from forklift.cache.identity import identify

SCRIPT = """
import sys
from forklift import Memory, Parallel, delayed
{import_line}

memory = Memory(sys.argv[1], verbose=1)

@memory.cache
def process(text):
    return {call}(text) + "!"

if __name__ == "__main__":
    if sys.argv[2] == "parallel":
        results = Parallel(n_jobs=2)(delayed(process)(t) for t in ["  a ", " b  "])
    else:
        results = [process("  a "), process(" b  ")]
    print("RESULT", results)
"""

HELPER = """
def clean(text):
    return text.strip()
"""


def run_script(folder: Path, mode: str = "serial") -> str:
    done = subprocess.run(
        [sys.executable, "-B", "script.py", str(folder / "cache"), mode],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("helper_path", "import_line", "call"),
    [
        ("helpers.py", "from helpers import clean", "clean"),
        ("helpers.py", "import helpers", "helpers.clean"),
        ("tools/text.py", "from tools.text import clean", "clean"),
    ],
)
def test_editing_a_helper_beside_the_script_recomputes_and_says_which(
    tmp_path: Path, helper_path: str, import_line: str, call: str
) -> None:
    (tmp_path / "script.py").write_text(SCRIPT.format(import_line=import_line, call=call))
    helper = tmp_path / helper_path
    helper.parent.mkdir(exist_ok=True)
    helper.write_text(HELPER)
    first = run_script(tmp_path)
    assert "RESULT ['a!', 'b!']" in first
    assert run_script(tmp_path).count("Computing") == 0  # cached
    helper.write_text(HELPER.replace("text.strip()", "text.strip().upper()"))
    second = run_script(tmp_path)
    assert "RESULT ['A!', 'B!']" in second  # not the stale 'a!'
    module = helper_path.removesuffix(".py").replace("/", ".")
    assert f"{module}.clean changed" in second, second


def test_messages_from_workers_name_the_script_not_dynamic_code(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(
        SCRIPT.format(import_line="", call="str.strip").replace(
            "@memory.cache", "def unused():\n    pass\n\n@memory.cache"
        )
    )
    run_script(tmp_path, "parallel")
    script = tmp_path / "script.py"
    script.write_text(script.read_text().replace('+ "!"', '+ "?"'))
    output = run_script(tmp_path, "parallel")
    assert "RESULT ['a?', 'b?']" in output
    assert "<dynamic-code>" not in output
    assert f"defined at {script}:" in output, output
    [record] = (tmp_path / "cache").rglob("function.json")
    assert json.loads(record.read_text())["location"].startswith(f"{script}:")


def test_library_and_standard_library_callees_are_not_followed() -> None:
    import numpy as np

    def summarise(values: list[float]) -> str:
        return textwrap.dedent(json.dumps(float(np.mean(values))))

    assert identify(summarise).dependencies == ()


def test_a_callee_change_names_the_callee_in_the_record(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(
        SCRIPT.format(import_line="from helpers import clean", call="clean")
    )
    (tmp_path / "helpers.py").write_text(HELPER)
    run_script(tmp_path)
    [record_file] = (tmp_path / "cache").rglob("function.json")
    record = json.loads(record_file.read_text())
    assert record["dependencies"] == ["helpers.clean"]
