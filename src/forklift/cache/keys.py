"""Call keys: one key per distinct call, whatever the spelling.

The arguments are bound to the function's signature with defaults filled in, so ``f(1)``,
``f(x=1)`` and ``f(1, y=2)`` (when ``y`` defaults to 2) share one key. Ignored arguments are
dropped. Arguments declared as input files add the file's content digest (or its size and
modification time) so the call reruns when the file changes.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import xxhash

from forklift.cache.misfit import misfit_message
from forklift.errors import CallArgumentsError, ConfigurationError
from forklift.hashing import hash as hash_value

__all__ = ["FILE_CHECKS", "CallKeyMaker"]

FILE_CHECKS: Final = ("content", "mtime")
_SIMPLE_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD,)
_CHUNK = 1 << 20


class CallKeyMaker:
    """Turns ``(args, kwargs)`` of one function into its bound arguments and a key."""

    def __init__(
        self,
        function: Callable[..., Any],
        ignore: Iterable[str] = (),
        input_files: Iterable[str] | Mapping[str, str] | None = None,
    ) -> None:
        self.name = getattr(function, "__qualname__", repr(function))
        try:
            self.signature: inspect.Signature | None = inspect.signature(function)
        except (TypeError, ValueError):  # some builtins have no signature
            self.signature = None
        names = [] if self.signature is None else list(self.signature.parameters)
        self.ignore = frozenset(ignore)
        self._check_names("ignore", self.ignore, names)
        if input_files is None:
            files: dict[str, str] = {}
        elif isinstance(input_files, Mapping):
            files = dict(input_files)
        else:
            files = dict.fromkeys(input_files, "content")
        for argument, check in files.items():
            if check not in FILE_CHECKS:
                raise ConfigurationError(
                    f"input_files[{argument!r}] must be one of {FILE_CHECKS}, got {check!r}"
                )
        self._check_names("input_files", set(files), names)
        self.input_files = files
        parameters = [] if self.signature is None else list(self.signature.parameters.values())
        self._simple = self.signature is not None and all(
            parameter.kind in _SIMPLE_KINDS for parameter in parameters
        )
        self._names = tuple(names)
        self._defaults = {
            parameter.name: parameter.default
            for parameter in parameters
            if parameter.default is not inspect.Parameter.empty
        }
        # For calls by position only, the defaults that fill the parameters after the n-th
        # (None when one of them has no default): one dict update instead of a loop
        # (call_key's fast path).
        self._tails: list[dict[str, Any] | None] = [
            dict((name, self._defaults[name]) for name in names[count:])
            if all(name in self._defaults for name in names[count:])
            else None
            for count in range(len(names) + 1)
        ]

    def _check_names(self, what: str, given: Iterable[str], names: list[str]) -> None:
        unknown = sorted(set(given) - set(names))
        if unknown and self.signature is not None:
            raise ConfigurationError(
                f"{what} names {unknown}, which {self.name}() does not have; its arguments "
                f"are {names}"
            )

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by name, defaults filled in, ignored ones left out."""
        if self._simple and len(args) <= len(self._names):
            bound = dict(zip(self._names, args, strict=False))
            for name, value in kwargs.items():
                if name in bound or name not in self._names:
                    return self._bind_slowly(args, kwargs)  # let inspect raise the TypeError
                bound[name] = value
            if len(bound) < len(self._names):
                for name in self._names:
                    if name not in bound:
                        if name not in self._defaults:
                            return self._bind_slowly(args, kwargs)
                        bound[name] = self._defaults[name]
        else:
            bound = self._bind_slowly(args, kwargs)
        for name in self.ignore:
            bound.pop(name, None)
        return bound

    def call_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """:meth:`arguments` and :meth:`key` of one call. A call by position of a function
        without input files, its missing arguments all defaulted, takes them in one frame:
        each call of the path every cached call takes cost about 1 µs of a miss (measured in
        place, between its system calls; twice what a loop of calls alone shows)."""
        if (
            self._simple
            and not kwargs
            and not self.input_files
            and len(args) <= len(self._names)
            and (tail := self._tails[len(args)]) is not None
        ):
            bound = dict(zip(self._names, args, strict=False))
            if tail:
                bound.update(tail)
            for name in self.ignore:
                bound.pop(name, None)
            fast = _scalar_key(bound)
            return bound, fast if fast is not None else hash_value(bound)
        arguments = self.arguments(args, kwargs)
        return arguments, self.key(arguments)

    def _bind_slowly(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.signature is None:
            return {"*args": args, "**kwargs": kwargs}
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise CallArgumentsError(
                misfit_message(self.name, self.signature, args, kwargs, str(error))
            ) from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def key(self, arguments: dict[str, Any]) -> str:
        """The digest that names this call's entry.

        Calls whose arguments are all plain scalars (the common case for cached steps) take
        a fast path: their ``repr`` - stable across processes and Python versions for these
        types - in signature order, under its own tag so it can never collide with the
        general encoding of :func:`forklift.hash` used for everything else.
        """
        if not self.input_files:
            fast = _scalar_key(arguments)
            return fast if fast is not None else hash_value(arguments)
        files = {
            name: _file_state(arguments.get(name), check)
            for name, check in self.input_files.items()
        }
        return hash_value((arguments, files))


# The scalar types of the fast key, each with its part of the key's text ("\x1f<type>\x1f").
_SCALAR_TAGS = {
    kind: f"\x1f{kind.__name__}\x1f" for kind in (int, float, str, bool, bytes, type(None))
}


def _scalar_key(arguments: dict[str, Any]) -> str | None:
    parts = ["forklift-call-key-1"]
    for name, value in arguments.items():
        tag = _SCALAR_TAGS.get(type(value))
        if tag is None:
            return None
        parts.append(f"{name}{tag}{value!r}")
    return xxhash.xxh3_128_hexdigest("\x1e".join(parts).encode("utf-8", "surrogatepass"))


def _file_state(value: Any, check: str) -> Any:
    if isinstance(value, list | tuple):
        return [_file_state(item, check) for item in value]
    if not isinstance(value, str | os.PathLike):
        return ("not a path", repr(type(value)))
    path = Path(value)
    try:
        if check == "mtime":
            status = path.stat()
            return (status.st_size, status.st_mtime_ns)
        digest = hashlib.blake2b(digest_size=16)
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()
    except FileNotFoundError:
        return "missing"
