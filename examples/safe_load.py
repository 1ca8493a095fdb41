# Opening a file someone else sent you: look before you load, and load with an allow-list.
import os
import sys

import numpy as np

from forklift import dump, load
from forklift.errors import UnsafeLoadError
from forklift.persist import SAFE_GLOBALS, inspect_file


class Exploit:
    """What a malicious pickle does: call something dangerous while loading."""

    def __reduce__(self):
        return (os.system, ("echo this would run a command",))


dump({"weights": np.arange(6.0).reshape(2, 3), "epochs": 10}, "model.fkl")
dump({"weights": Exploit()}, "untrusted.fkl")

print(inspect_file("untrusted.fkl").summary())  # lists posix.system / nt.system: no code runs

# SAFE_GLOBALS: builtin containers and numbers, numpy arrays and dtypes.
print(load("model.fkl", allowed_globals=SAFE_GLOBALS)["epochs"])
try:
    load("untrusted.fkl", allowed_globals=SAFE_GLOBALS)
except UnsafeLoadError as refused:
    print("refused:", refused)
    sys.exit(0)
print("ERROR: the unsafe file was loaded")
sys.exit(1)
