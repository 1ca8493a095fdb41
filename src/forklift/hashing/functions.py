"""Records for functions, code, methods, modules and named singletons.

A function or builtin is written by name (``P``) when its public module and qualified name
lead back to it (see :mod:`forklift.hashing.names`); otherwise (lambdas, nested or replaced
functions) by name *and* code, defaults and closure (``L``). Layouts: the table of
:mod:`forklift.hashing.kinds`.

Imports nothing from forklift outside :mod:`forklift.hashing`.
"""

from __future__ import annotations

import types
from typing import Any

from forklift.hashing.encoder import Encoder, Handler, pack_u64
from forklift.hashing.names import public_module

__all__ = ["FUNCTION_HANDLERS", "encode_global"]


def encode_global(enc: Encoder, module: str | None, qualname: str) -> None:
    """Write a ``P`` record: something found by importing ``module`` and walking ``qualname``."""
    enc.out += b"P"
    enc.write_text(module or "")
    enc.write_text(qualname)


def _function(enc: Encoder, obj: types.FunctionType) -> None:
    # A function its name leads back to is hashed by name, as pickle does: its code is the
    # cache's business (it fingerprints code separately), and the name is stable everywhere.
    module = public_module(obj.__module__, obj.__qualname__, obj)
    if module is not None:
        encode_global(enc, module, obj.__qualname__)
        return
    # Lambdas, nested functions, replaced definitions: the name is ambiguous (every lambda of
    # a module is "<lambda>"), so the code, defaults and closure are hashed too. Bytecode is
    # specific to the Python version: such a function's hash is stable within one version.
    if not enc.enter(obj):
        return
    enc.out += b"L"
    enc.write_text(obj.__module__ or "")
    enc.write_text(obj.__qualname__)
    enc.encode(obj.__code__)
    enc.encode(obj.__defaults__)
    enc.encode(obj.__kwdefaults__)
    cells = obj.__closure__ or ()
    enc.out += pack_u64(len(cells))
    for cell in cells:
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell (a variable not yet assigned)
            enc.out += b"_"
        else:
            enc.encode(contents)
    enc.leave(obj)


def _code(enc: Encoder, obj: types.CodeType) -> None:
    enc.out += b"k"
    enc.out += pack_u64(obj.co_argcount) + pack_u64(obj.co_posonlyargcount)
    enc.out += pack_u64(obj.co_kwonlyargcount)
    enc.encode(obj.co_code)
    enc.encode(obj.co_consts)  # nested code objects of inner functions recurse here
    enc.encode(obj.co_names)
    enc.encode(obj.co_varnames)


def _builtin(enc: Encoder, obj: types.BuiltinFunctionType) -> None:
    owner = obj.__self__
    if owner is None or isinstance(owner, types.ModuleType):
        module = public_module(obj.__module__, obj.__qualname__, obj) or obj.__module__
        encode_global(enc, module, obj.__qualname__)
    else:  # a bound method of a built-in object, like [].append: its object matters
        enc.out += b"M"
        enc.encode(owner)
        encode_global(enc, None, obj.__name__)


def _method(enc: Encoder, obj: types.MethodType) -> None:
    enc.out += b"M"
    enc.encode(obj.__self__)
    enc.encode(obj.__func__)


def _module(enc: Encoder, obj: types.ModuleType) -> None:
    enc.out += b"O"
    enc.write_text(obj.__name__)


def _singleton(name: str) -> Handler:
    def encode(enc: Encoder, obj: Any) -> None:
        encode_global(enc, "builtins", name)

    return encode


FUNCTION_HANDLERS: dict[type, Handler] = {
    types.FunctionType: _function,
    types.CodeType: _code,
    types.BuiltinFunctionType: _builtin,
    types.MethodType: _method,
    types.ModuleType: _module,
    type(Ellipsis): _singleton("Ellipsis"),
    type(NotImplemented): _singleton("NotImplemented"),
}
"""Handlers by exact type."""
