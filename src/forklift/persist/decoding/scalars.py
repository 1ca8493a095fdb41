"""Opcodes that push plain data: numbers, strings, bytes, out-of-band buffers, framing.

Each handler reads its argument through :meth:`Decoder.read` (which reads big lengths in
pieces, so a false length field allocates nothing) and pushes an ordinary Python value.
Python 2 strings (STRING, BINSTRING, SHORT_BINSTRING) are decoded with the decoder's
``encoding`` (joblib files: latin-1, as numpy requires), or kept as bytes for ``"bytes"``.

Imports only :mod:`forklift.errors`.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable
from typing import Any

from forklift.persist.decoding.machine import Decoder, Handler

__all__ = ["SCALAR_OPCODES"]


def _fixed(form: str) -> Handler:
    size = struct.calcsize(form)

    def handler(d: Decoder) -> None:
        d.stack.append(struct.unpack(form, d.read(size))[0])

    return handler


def _counted(form: str, convert: Callable[[Decoder, bytes], Any]) -> Handler:
    """An opcode whose argument is a length (packed as ``form``) and that many bytes."""
    size = struct.calcsize(form)

    def handler(d: Decoder) -> None:
        length = struct.unpack(form, d.read(size))[0]
        if length < 0:
            raise d.corrupt("negative length")
        d.stack.append(convert(d, d.read(length)))

    return handler


def _line(convert: Callable[[bytes], Any]) -> Handler:
    def handler(d: Decoder) -> None:
        d.stack.append(convert(d.readline()))

    return handler


def _push(value: Any) -> Handler:
    def handler(d: Decoder) -> None:
        d.stack.append(value)

    return handler


def _utf8(d: Decoder, data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _signed(d: Decoder, data: bytes) -> int:
    return int.from_bytes(data, "little", signed=True)


def _py2_string(d: Decoder, data: bytes) -> Any:
    return data if d.encoding == "bytes" else data.decode(d.encoding, "strict")


def _text_int(line: bytes) -> int | bool:
    if line in (b"00", b"01"):
        return line == b"01"  # protocol 0's spelling of False and True
    return int(line)


def _string(d: Decoder) -> None:
    line = d.readline()
    if len(line) < 2 or line[0] != line[-1] or line[:1] not in (b"'", b'"'):
        raise d.corrupt("a STRING opcode's argument is not quoted")
    d.stack.append(_py2_string(d, codecs.escape_decode(line[1:-1])[0]))


def _proto(d: Decoder) -> None:
    d.protocol = d.read(1)[0]
    if d.protocol > 5:
        raise d.corrupt("unknown pickle protocol")


def _frame(d: Decoder) -> None:
    d.read(8)  # frames only group reads; the decoder reads sequentially anyway


def _next_buffer(d: Decoder) -> None:
    buffer = next(d.buffers, None)
    if buffer is None:
        raise d.corrupt("it uses more out-of-band buffers than the file has")
    d.stack.append(buffer)


def _readonly_buffer(d: Decoder) -> None:
    value = d.settle(d.pop())
    with memoryview(value) as view:
        readonly = view.readonly
    d.stack.append(value if readonly else memoryview(value).toreadonly())


SCALAR_OPCODES: dict[int, Handler] = {
    0x80: _proto,
    0x95: _frame,
    ord("."): lambda d: True,  # STOP
    ord("N"): _push(None),
    0x88: _push(True),
    0x89: _push(False),
    ord("J"): _fixed("<i"),
    ord("K"): _fixed("<B"),
    ord("M"): _fixed("<H"),
    ord("G"): _fixed(">d"),
    ord("I"): _line(_text_int),
    ord("L"): _line(lambda line: int(line.rstrip(b"L"))),
    ord("F"): _line(float),
    ord("V"): _line(lambda line: line.decode("raw-unicode-escape")),
    0x8A: _counted("<B", _signed),
    0x8B: _counted("<i", _signed),
    ord("C"): _counted("<B", lambda d, data: data),
    ord("B"): _counted("<I", lambda d, data: data),
    0x8E: _counted("<Q", lambda d, data: data),
    0x96: _counted("<Q", lambda d, data: bytearray(data)),
    0x8C: _counted("<B", _utf8),
    ord("X"): _counted("<I", _utf8),
    0x8D: _counted("<Q", _utf8),
    ord("U"): _counted("<B", _py2_string),
    ord("T"): _counted("<i", _py2_string),
    ord("S"): _string,
    0x97: _next_buffer,
    0x98: _readonly_buffer,
}
