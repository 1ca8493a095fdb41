"""The decoding machine: input, stack, marks, memo, work budget; the opcodes live apart.

A :class:`Decoder` reads one pickle stream and runs one handler per opcode from the table
it is given (:mod:`.scalars` and :mod:`.structure` make it). Stack items are plain values,
:class:`Token` (a global named by the stream, resolved only through the caller's rules) or
:class:`Pending` (an object a builder made that waits for its state). :meth:`Decoder.settle`
turns an item into a usable value: a token into its allowed object, a pending object into
its finished value. Nothing from the stream is ever called directly.

Imports only :mod:`forklift.errors`.
"""

from __future__ import annotations

import _compat_pickle
from collections.abc import Callable, Iterable
from typing import IO, Any, Protocol

from forklift.errors import CorruptFileError, ForkliftError, UnsafeLoadError

__all__ = ["MARK", "Decoder", "Handler", "Pending", "Rule", "Token", "decode", "python3_name"]

#: Text lines (protocol 0 opcodes) longer than this are refused: no writer makes them.
_MAX_LINE = 16 << 20
#: Large reads are taken in pieces of this size, so a length field cannot allocate alone.
_PIECE = 1 << 20


def python3_name(module: str, qualname: str, protocol: int) -> tuple[str, str]:
    """The name pickle really imports: protocols 0-2 use Python 2 names (``__builtin__``)."""
    if protocol < 3:
        if (module, qualname) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[module, qualname]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return module, qualname


class Token:
    """A global named by the stream: ``module.qualname``, resolved only when needed."""

    __slots__ = ("module", "name", "qualname")

    def __init__(self, module: str, qualname: str, protocol: int = 5) -> None:
        self.module, self.qualname = python3_name(module, qualname, protocol)
        self.name = f"{self.module}.{self.qualname}"

    def __repr__(self) -> str:
        return f"<global {self.name}>"


class Pending:
    """An object a builder made that waits for its state (BUILD) before it is usable."""

    used = False  # settled: BUILD may no longer change it
    value: Any = None

    def build(self, state: Any, decoder: Decoder) -> Any:
        raise UnsafeLoadError(f"{decoder.name}: BUILD on {self!r} is refused")

    def finish(self, decoder: Decoder) -> Any:
        """The value when no BUILD came (or the one BUILD made)."""
        raise decoder.corrupt(f"{self!r} is used before its state was given")


class _Mark:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<MARK>"


MARK = _Mark()


class Rule(Protocol):
    """What a resolver gives for an allowed global: how to call it, what it is as a value."""

    def call(
        self, decoder: Decoder, args: tuple[Any, ...], kwargs: dict[str, Any], *, new: bool
    ) -> Any:
        """REDUCE / INST / OBJ (``new`` False) or NEWOBJ(_EX) (``new`` True) on the global."""
        ...

    def value(self, decoder: Decoder, token: Token) -> Any:
        """The global used as a plain value (a class passed as an argument, say)."""
        ...


#: One handler per opcode; it returns True only for STOP.
Handler = Callable[["Decoder"], "bool | None"]


class Decoder:
    """One decoding of one pickle stream. ``resolve`` refuses a global or gives its Rule."""

    def __init__(
        self,
        file: IO[bytes],
        *,
        name: str,
        resolve: Callable[[Decoder, Token], Rule],
        buffers: Iterable[Any] | None = None,
        encoding: str = "ASCII",
        budget_base: int = 1 << 20,
        size: int | None = None,
    ) -> None:
        self.file = file
        self.size = size  # the stream's length when known (in memory): one read per value
        self.name = name
        self.buffers = iter(buffers if buffers is not None else ())
        self.encoding = encoding
        self.resolve = resolve
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.trusted: dict[int, Any] = {}  # objects made by caller-allowed globals (kept alive)
        self.consumed = 0
        self.protocol = 0  # until a PROTO opcode says otherwise, as in pickle
        self.spent = 0
        self._budget_base = budget_base

    # -- input ---------------------------------------------------------------------------
    def corrupt(self, message: str) -> CorruptFileError:
        return CorruptFileError(f"{self.name}: damaged pickle stream: {message}")

    def read(self, length: int) -> bytes:
        """Exactly ``length`` bytes; read in pieces so a false length cannot allocate."""
        if length <= _PIECE or (self.size is not None and self.file.tell() + length <= self.size):
            data = self.file.read(length)
        else:
            pieces = []
            remaining = length
            while remaining:
                piece = self.file.read(min(remaining, _PIECE))
                if not piece:
                    break
                pieces.append(piece)
                remaining -= len(piece)
            data = b"".join(pieces)
        if len(data) != length:
            raise self.corrupt("it ends in the middle of a value")
        self.consumed += length
        return data

    def readline(self) -> bytes:
        line = self.file.readline(_MAX_LINE)
        if not line.endswith(b"\n"):
            raise self.corrupt("a text line is unterminated or too long")
        self.consumed += len(line)
        return line[:-1]

    def charge(self, units: int) -> None:
        """Account for ``units`` copied items or bytes; refuse beyond what the file holds."""
        self.spent += units
        if self.spent > 4 * self.consumed + self._budget_base:
            raise self.corrupt(
                "it copies its own data more often than any writer does (a memory bomb?)"
            )

    # -- values --------------------------------------------------------------------------
    def settle(self, value: Any) -> Any:
        """The usable value of a stack item: tokens resolve, pending objects finish."""
        if isinstance(value, Pending):
            if not value.used:
                value.value = value.finish(self)
                value.used = True
            return value.value
        if isinstance(value, Token):
            return self.resolve(self, value).value(self, value)
        if value is MARK:
            raise self.corrupt("a MARK is used as a value")
        return value

    def pop(self) -> Any:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise self.corrupt("stack underflow")  # as pickle: never across a MARK
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise self.corrupt("no MARK to pop to")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def top(self) -> Any:
        if len(self.stack) <= (self.marks[-1] if self.marks else 0):
            raise self.corrupt("stack underflow")
        return self.stack[-1]

    def keep_trusted(self, value: Any) -> Any:
        self.trusted[id(value)] = value
        return value

    # -- the loop ------------------------------------------------------------------------
    def load(self, table: dict[int, Handler]) -> Any:
        read = self.file.read
        while True:
            code = read(1)
            if not code:
                raise self.corrupt("it ends without a STOP opcode")
            self.consumed += 1
            handler = table.get(code[0])
            if handler is None:
                raise self.corrupt(f"opcode {code!r} is not allowed in a restricted load")
            if handler(self):
                if self.marks or len(self.stack) != 1:
                    raise self.corrupt("STOP with a malformed stack")
                return self.settle(self.stack.pop())


def decode(decoder: Decoder, table: dict[int, Handler]) -> Any:
    """Run ``decoder``; any failure that is not already a forklift error becomes one."""
    try:
        return decoder.load(table)
    except ForkliftError:
        raise
    except MemoryError:
        raise decoder.corrupt("it asks for more memory than this machine has") from None
    except Exception as exc:
        raise decoder.corrupt(f"{type(exc).__name__}: {exc}") from None
