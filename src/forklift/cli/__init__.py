"""The ``forklift`` command (``python -m forklift``). One of the two rooms that print."""
