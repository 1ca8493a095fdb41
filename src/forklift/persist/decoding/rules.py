"""What a global may do in a restricted load: the resolver and its kinds of rules.

A global the stream names is first checked against the caller's allow-list; then:

=====================  =============================================================
``Builder``            forklift constructs the value from checked arguments
                       (every name of ``SAFE_GLOBALS``: :mod:`.builtin_builders`,
                       :mod:`.numpy_builders`)
``ClassOnly``          a class that may be passed as an argument (``numpy.ndarray``
                       as an array's class) but never called with file data
``Trusted``            a name the caller added that forklift has no builder for: the
                       caller vouched for it, so it is imported and called as pickle would
``Inert``              (``inspect_file`` only) any other name: a stub that accepts
                       everything and runs nothing
=====================  =============================================================

Imports only :mod:`forklift.errors`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from forklift.errors import CorruptFileError, UnsafeLoadError
from forklift.persist.decoding.machine import Decoder, Rule, Token

__all__ = ["Builder", "ClassOnly", "Inert", "Resolver", "Trusted", "import_global"]


def import_global(decoder: Decoder, token: Token) -> Any:
    """The object ``token`` names (numpy.core is read as numpy._core on numpy 2)."""
    module = token.module
    # numpy 2 renamed numpy.core to numpy._core (the old name warns on import)
    if module.split(".")[:2] == ["numpy", "core"] and hasattr(
        importlib.import_module("numpy"), "_core"
    ):
        module = "numpy._core" + module[len("numpy.core") :]
    try:
        value: Any = importlib.import_module(module)
        for part in token.qualname.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise CorruptFileError(
            f"{decoder.name}: it needs {token.name}, which cannot be imported here ({exc})"
        ) from None
    return value


class Builder:
    """Calls go to ``function(decoder, args)``; the name as a value is the real object."""

    def __init__(self, function: Callable[[Decoder, tuple[Any, ...]], Any]) -> None:
        self._function = function

    def call(
        self, decoder: Decoder, args: tuple[Any, ...], kwargs: dict[str, Any], *, new: bool
    ) -> Any:
        if kwargs:
            raise decoder.corrupt("keyword arguments to a built-in constructor")
        return self._function(decoder, args)

    def value(self, decoder: Decoder, token: Token) -> Any:
        return import_global(decoder, token)


class ClassOnly:
    """A class usable as an argument; calling it with file data is refused."""

    def call(
        self, decoder: Decoder, args: tuple[Any, ...], kwargs: dict[str, Any], *, new: bool
    ) -> Any:
        raise UnsafeLoadError(
            f"{decoder.name}: refused to load: it calls a numpy class directly with file data, "
            "which neither numpy's pickling, forklift nor joblib does"
        )

    def value(self, decoder: Decoder, token: Token) -> Any:
        return import_global(decoder, token)


class Trusted:
    """A global the caller allowed and forklift has no builder for: pickle's semantics."""

    def __init__(self, token: Token) -> None:
        self._token = token

    def call(
        self, decoder: Decoder, args: tuple[Any, ...], kwargs: dict[str, Any], *, new: bool
    ) -> Any:
        target = import_global(decoder, self._token)
        result = target.__new__(target, *args, **kwargs) if new else target(*args, **kwargs)
        return decoder.keep_trusted(result)

    def value(self, decoder: Decoder, token: Token) -> Any:
        return import_global(decoder, token)


class _Stub:
    """What any call of an inert global returns while inspecting: accepts everything."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def add(self, item: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
        return _Stub()


class Inert:
    """(Inspection) a global that is recorded but never imported or run."""

    def call(
        self, decoder: Decoder, args: tuple[Any, ...], kwargs: dict[str, Any], *, new: bool
    ) -> Any:
        return decoder.keep_trusted(_Stub())

    def value(self, decoder: Decoder, token: Token) -> Any:
        # a stand-in class with the global's name (reports show "matrix", not "_Stub")
        name = token.qualname.rsplit(".", 1)[-1]
        return decoder.keep_trusted(type(name, (_Stub,), {"__module__": "forklift.inspect"}))


class Resolver:
    """Token -> Rule: the allow-list check, then the builder table, then ``default``.

    ``allowed`` None accepts every name (inspection, where ``default`` is :class:`Inert`).
    ``seen`` collects every name in order (inspection reports them).
    """

    def __init__(
        self,
        allowed: frozenset[str] | None,
        rules: Mapping[str, Rule],
        *,
        inert: bool = False,
    ) -> None:
        self._allowed = allowed
        self._rules = rules
        self._inert = inert
        self._cache: dict[str, Rule] = {}
        self.seen: list[str] = []

    def __call__(self, decoder: Decoder, token: Token) -> Rule:
        rule = self._cache.get(token.name)
        if rule is not None:
            return rule
        name = token.name
        self.seen.append(name)
        if self._allowed is not None and name not in self._allowed:
            raise UnsafeLoadError(
                f"{decoder.name}: refused to load: it imports {name}, not in allowed_globals",
                (name,),
            )
        found = self._rules.get(name)
        if found is None:
            found = Inert() if self._inert else Trusted(token)
        self._cache[name] = found
        return found
