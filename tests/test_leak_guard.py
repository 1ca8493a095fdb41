"""The suite's leak guard itself: a test that leaves something behind must fail."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LEAKS = {
    "thread": """
        import threading
        def test_leak():
            threading.Thread(target=threading.Event().wait, args=(30,), daemon=True).start()
    """,
    "child process": """
        import pathlib, subprocess, sys
        def test_leak():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
            pathlib.Path("child.pid").write_text(str(child.pid))
    """,
    "temp file": """
        import tempfile
        def test_leak():
            tempfile.NamedTemporaryFile(prefix="left-", delete=False).close()
    """,
}
EXPECTED = {
    "thread": "threads left running",
    "child process": "child processes left running",
    "temp file": "temp files left behind",
}


@pytest.mark.parametrize("kind", sorted(LEAKS))
def test_guard_fails_a_leaking_test(kind: str, tmp_path: Path) -> None:
    shutil.copy(Path(__file__).parent / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_leaky.py").write_text(textwrap.dedent(LEAKS[kind]))
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "FORKLIFT_TEST_LEAK_GRACE": "0.5"},
    )
    pid_file = tmp_path / "child.pid"
    if pid_file.exists():  # the leaked child outlives the inner run: end it here
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert completed.returncode == 1, completed.stdout
    assert EXPECTED[kind] in completed.stdout, completed.stdout
