"""A seeded fuzz run in every test session (``make fuzz`` runs a longer one).

The run happens in a child process: a crash or a hang fails this test instead of ending
the session. See :mod:`tests.persist.fuzzing` for what counts as a failure.
"""

from __future__ import annotations

import json

import pytest
from tests.persist.crafting import run_child

pytest.importorskip("numpy")

_FUZZ = """
import sys
from tests.persist.fuzzing import main
sys.exit(main(["--seed", "0", "--count", "2000"]))
"""


def test_two_thousand_mutants_give_forklift_errors_or_right_values() -> None:
    result = run_child(_FUZZ, timeout=110)
    assert result.returncode in (0, 1), f"the fuzz run died: {result.stderr[-2000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["mutants"] == 2000
    assert not report["failures"], report
    assert report["outcomes"]["error"] > 1000  # the mutants really were damaged
