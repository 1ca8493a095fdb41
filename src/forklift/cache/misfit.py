"""The message for a cached call whose arguments do not fit the function's signature.

joblib's Memory raises ``ValueError`` for these calls with a phrase per case ("Too many
arguments", "Too many keyword arguments", "Wrong number of arguments", "given both as
positional and as keyword"); forklift keeps the phrases, so code and searches that rely on
them still work, and adds what went wrong and what to do.
"""

from __future__ import annotations

import inspect
import reprlib
from typing import Any

__all__ = ["misfit_message"]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_short = reprlib.Repr()
_short.maxstring = 30
_short.maxother = 30


def misfit_message(
    name: str,
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    detail: str,
) -> str:
    """Which rule the call broke, the call as written, and how to fix it."""
    parameters = list(signature.parameters.values())
    kinds = {parameter.kind for parameter in parameters}
    positional = [p.name for p in parameters if p.kind in _POSITIONAL]
    keyword_names = {p.name for p in parameters if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    call = ", ".join(
        [_short.repr(value) for value in args]
        + [f"{key}={_short.repr(value)}" for key, value in kwargs.items()]
    )
    written = f"{name}({call}) was called"
    bare = signature.replace(
        parameters=[p.replace(annotation=inspect.Parameter.empty) for p in parameters],
        return_annotation=inspect.Signature.empty,
    )
    head = f"{name}{bare}: {written}"
    if inspect.Parameter.VAR_POSITIONAL not in kinds and len(args) > len(positional):
        keyword_only = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
        fix = (
            f"; pass keyword-only argument{'s' if len(keyword_only) > 1 else ''} "
            f"{', '.join(map(repr, keyword_only))} by name"
            if keyword_only
            else ""
        )
        return (
            f"Too many arguments for {head}.\n{detail}: it takes {len(positional)} "
            f"positional argument{'s' if len(positional) != 1 else ''}{fix}."
        )
    both = sorted(set(positional[: len(args)]) & set(kwargs))
    if both:
        return (
            f"Argument {both[0]} was given both as positional and as keyword for {head}.\n"
            f"{detail}: give it once."
        )
    unknown = sorted(set(kwargs) - keyword_names)
    if unknown and inspect.Parameter.VAR_KEYWORD not in kinds:
        return (
            f"Too many keyword arguments for {head}.\n{detail}: "
            f"{', '.join(map(repr, unknown))} is not among its arguments {sorted(keyword_names)}."
        )
    return f"Wrong number of arguments for {head}.\n{detail}."
