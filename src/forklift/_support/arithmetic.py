"""Evaluate small arithmetic expressions such as ``"2 * n_jobs"`` without ``eval``.

``pre_dispatch`` accepts such an expression. It is parsed with :mod:`ast` and only numbers,
the names the caller allows, ``+ - * / //`` and parentheses are accepted; anything else is an
error that names what was refused.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping

from forklift.errors import ConfigurationError

__all__ = ["evaluate_expression"]

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_MAX_LENGTH = 200


def evaluate_expression(text: str, names: Mapping[str, float], *, what: str) -> float:
    """Compute ``text`` with ``names`` bound; raise ConfigurationError naming ``what`` if bad.

    >>> evaluate_expression("2 * n_jobs + 1", {"n_jobs": 4}, what="pre_dispatch")
    9
    """
    if len(text) > _MAX_LENGTH:
        raise ConfigurationError(f"{what} expression is too long ({len(text)} characters)")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigurationError(
            f"{what}={text!r} is not an arithmetic expression: {exc.msg}"
        ) from None
    allowed = ", ".join(sorted(names)) or "no names"
    return _evaluate(tree.body, names, text=text, what=what, allowed=allowed)


def _evaluate(
    node: ast.expr, names: Mapping[str, float], *, text: str, what: str, allowed: str
) -> float:
    def refuse(reason: str) -> ConfigurationError:
        return ConfigurationError(
            f"{what}={text!r}: {reason}; only numbers, {allowed}, + - * / // and "
            "parentheses are allowed"
        )

    if isinstance(node, ast.Constant):
        if isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return node.value
        raise refuse(f"{node.value!r} is not a number")
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        raise refuse(f"unknown name {node.id!r}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _evaluate(node.left, names, text=text, what=what, allowed=allowed)
        right = _evaluate(node.right, names, text=text, what=what, allowed=allowed)
        try:
            return _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise refuse("division by zero") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](
            _evaluate(node.operand, names, text=text, what=what, allowed=allowed)
        )
    raise refuse(f"{type(node).__name__} is not allowed")
