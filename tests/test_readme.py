"""The README's example runs as printed: a cached, parallel pipeline, served from the cache on
its second run (the issue's "done when": a new user gets there from the README alone)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def pipeline_code() -> str:
    section = README.read_text().split("## A cached, parallel pipeline", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's pipeline section has no python code block"
    return match.group(1)


def test_readme_pipeline_runs_and_its_second_run_computes_nothing(tmp_path: Path) -> None:
    code = pipeline_code()
    # Shorter sleeps; verbose=1 makes each computation (in whichever worker) print a line.
    assert "time.sleep(1)" in code and "verbose=0" in code
    code = code.replace("time.sleep(1)", "time.sleep(0.05)").replace("verbose=0", "verbose=1")
    script = tmp_path / "pipeline.py"
    script.write_text(code)
    outputs = [
        subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    squares = "[0, 1, 4, 9, 16, 25, 36, 49]"
    assert outputs[0].count("[Memory] Computing") == 8, outputs[0]
    assert squares in outputs[0]
    assert outputs[1].strip() == squares
