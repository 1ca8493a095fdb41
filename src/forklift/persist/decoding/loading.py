"""Entry points of the safe decoder: the opcode table and the rules, put together.

:func:`decode_stream` runs one :class:`~.machine.Decoder` over a stream with a
:class:`~.rules.Resolver`; :func:`safe_rules` is the builder table for ``SAFE_GLOBALS``
(plus any extra rules a reader adds, such as joblib's array wrappers).

Imports only :mod:`forklift.errors`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import IO, Any

from forklift.errors import UnsafeLoadError
from forklift.persist.decoding.builtin_builders import BUILTIN_RULES
from forklift.persist.decoding.machine import Decoder, Handler, Rule, decode
from forklift.persist.decoding.numpy_builders import NUMPY_RULES
from forklift.persist.decoding.rules import ClassOnly, Resolver
from forklift.persist.decoding.scalars import SCALAR_OPCODES
from forklift.persist.decoding.structure import STRUCTURE_OPCODES

__all__ = ["OPCODES", "decode_bytes", "decode_stream", "safe_rules"]

#: Every opcode of protocols 0-5 except PERSID/BINPERSID and EXT1/2/4 (which name objects
#: through registries a file cannot be held to).
OPCODES: dict[int, Handler] = {**SCALAR_OPCODES, **STRUCTURE_OPCODES}


class _JoblibOnly(ClassOnly):
    """joblib's array wrappers mean something only inside a joblib file (legacy_safe)."""

    def call(
        self, decoder: Decoder, args: tuple[Any, ...], kwargs: dict[str, Any], *, new: bool
    ) -> Any:
        raise UnsafeLoadError(
            f"{decoder.name}: refused to load: joblib's array wrappers only appear in files "
            "written by joblib"
        )


_JOBLIB_WRAPPERS = {
    f"joblib.numpy_pickle.{name}": _JoblibOnly()
    for name in ("NumpyArrayWrapper", "NDArrayWrapper", "ZNDArrayWrapper")
}


def safe_rules(extra: Mapping[str, Rule] | None = None) -> dict[str, Rule]:
    """The rule of every ``SAFE_GLOBALS`` name (none falls back to pickle), plus ``extra``."""
    return {**BUILTIN_RULES, **NUMPY_RULES, **_JOBLIB_WRAPPERS, **(extra or {})}


def decode_stream(
    file: IO[bytes],
    *,
    name: str,
    resolver: Resolver,
    buffers: Iterable[Any] | None = None,
    encoding: str = "ASCII",
    size: int | None = None,
) -> Any:
    """Decode one pickle from ``file`` (left just after its STOP opcode); ``size``: the
    length of an in-memory ``file``, if known."""
    decoder = Decoder(
        file, name=name, resolve=resolver, buffers=buffers, encoding=encoding, size=size
    )
    return decode(decoder, OPCODES)


def decode_bytes(
    data: Any,
    *,
    name: str,
    allowed: frozenset[str],
    buffers: Iterable[Any] | None = None,
) -> Any:
    """Decode the in-memory pickle ``data`` with the allow-list ``allowed``."""
    view = memoryview(data).cast("B")
    resolver = Resolver(allowed, safe_rules())
    return decode_stream(
        io.BytesIO(view), name=name, resolver=resolver, buffers=buffers, size=view.nbytes
    )
