"""Progress is observation: the engine emits events, reporters draw them.

This room may print (it is one of the two that do, with cli/). It imports only errors and
_support.
"""
