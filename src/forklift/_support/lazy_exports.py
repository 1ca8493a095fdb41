"""Package names loaded on first use: one home for the module-level ``__getattr__`` body.

``forklift``, ``forklift.pool`` and ``forklift.progress`` list their public names with the
module each lives in, and import that module only when a name is first asked for (``from
forklift import Parallel`` must not import the trace recorder, persist or numpy). Each keeps
a two-line ``def __getattr__`` of its own, so type checkers still see a module-level
``__getattr__``; the look-up, the error and the caching are here.

Imports only the standard library.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = ["load_export"]


def load_export(
    package: str, homes: Mapping[str, str], namespace: MutableMapping[str, Any], name: str
) -> Any:
    """Import ``name`` from its home module (``homes[name]``) and keep it in ``namespace``
    (the package's globals, so later look-ups skip ``__getattr__``); AttributeError, as for
    any missing attribute, when ``name`` is not one of the package's exports."""
    home = homes.get(name)
    if home is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    namespace[name] = value
    return value
