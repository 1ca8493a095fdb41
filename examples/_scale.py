"""Shared by the seed examples: FORKLIFT_EXAMPLE_SCALE shortens time.sleep when tests run them."""

import os
import time

_scale = float(os.environ.get("FORKLIFT_EXAMPLE_SCALE", "1"))
_sleep = time.sleep
if _scale != 1:
    time.sleep = lambda seconds: _sleep(seconds * _scale)
