"""Opcodes that build structure: containers, the stack and memo, globals, calls, BUILD.

The decoder's rules, in one place:

* containers are made by the opcodes themselves; items are added only to lists, dicts,
  sets, deques, OrderedDicts and Counters (or objects of globals the caller added);
* a dict key or set item that is a tuple may nest at most :data:`MAX_KEY_DEPTH` deep
  (CPython hashes tuples recursively in C);
* a global becomes a :class:`Token` after the resolver accepted its name; calling it goes
  to its :class:`Rule`; nothing else on the stack may be called, except objects made by
  globals the caller added;
* BUILD only finishes a :class:`Pending` object (its builder checks the state) or sets the
  state of an object made by a global the caller added.

Imports only :mod:`forklift.errors`.
"""

from __future__ import annotations

import collections
import struct
from typing import Any

from forklift.errors import UnsafeLoadError
from forklift.persist.decoding.machine import Decoder, Handler, Pending, Token

__all__ = ["MAX_KEY_DEPTH", "STRUCTURE_OPCODES", "add_items", "check_key"]


def _uint32(d: Decoder) -> int:
    return int(struct.unpack("<I", d.read(4))[0])


# -- container semantics ----------------------------------------------------------------
#: Keys nested deeper than this are refused: hashing a tuple recurses in C without a guard.
MAX_KEY_DEPTH = 100


def check_key(d: Decoder, key: Any) -> Any:
    """``key`` if hashing it is safe (only tuples can nest: their depth is bounded)."""
    if type(key) is tuple:
        level = [key]
        for _ in range(MAX_KEY_DEPTH):
            level = [item for value in level for item in value if type(item) is tuple]
            if not level:
                return key
        raise d.corrupt(f"a dict key or set item nested more than {MAX_KEY_DEPTH} deep")
    return key


def add_items(d: Decoder, target: Any, items: list[Any], kind: str) -> None:
    """APPEND(S), SETITEM(S), ADDITEMS onto ``target``, for the container types only."""
    kinds = type(target)
    if kind == "append" and kinds in (list, collections.deque):
        target.extend(items)
    elif kind == "setitem" and kinds in (dict, collections.OrderedDict, collections.Counter):
        for index in range(0, len(items), 2):
            target[check_key(d, items[index])] = items[index + 1]
    elif kind == "add" and kinds is set:
        target.update(check_key(d, item) for item in items)
    elif id(target) in d.trusted:
        _trusted_add(target, items, kind)
    else:
        raise UnsafeLoadError(
            f"{d.name}: refused to load: it adds items ({kind}) to a {kinds.__name__} object, "
            "which neither forklift nor joblib writes"
        )


def _trusted_add(target: Any, items: list[Any], kind: str) -> None:
    """What pickle does on an object of a caller-allowed class."""
    if kind == "append":
        extend = getattr(target, "extend", None)
        if extend is not None:
            extend(items)
        else:
            for item in items:
                target.append(item)
    elif kind == "setitem":
        for index in range(0, len(items), 2):
            target[items[index]] = items[index + 1]
    elif isinstance(target, set):
        target.update(items)
    else:
        for item in items:
            target.add(item)


def trusted_build(target: Any, state: Any) -> None:
    """BUILD on an object of a caller-allowed class, as pickle does it."""
    setstate = getattr(target, "__setstate__", None)
    if setstate is not None:
        setstate(state)
        return
    slots = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
    if state:
        target.__dict__.update(state)
    if slots:
        for key, value in slots.items():
            setattr(target, key, value)


# -- containers --------------------------------------------------------------------------
def _mark(d: Decoder) -> None:
    d.marks.append(len(d.stack))


def _empty_tuple(d: Decoder) -> None:
    d.stack.append(())


def _tuple(d: Decoder) -> None:
    d.stack.append(tuple(d.settle(item) for item in d.pop_mark()))


def _tuple_n(count: int) -> Handler:
    def handler(d: Decoder) -> None:
        if len(d.stack) < count or (d.marks and d.marks[-1] > len(d.stack) - count):
            raise d.corrupt("stack underflow")
        items = tuple(d.settle(item) for item in d.stack[-count:])
        del d.stack[-count:]
        d.stack.append(items)

    return handler


def _empty_list(d: Decoder) -> None:
    d.stack.append([])


def _list(d: Decoder) -> None:
    d.stack.append([d.settle(item) for item in d.pop_mark()])


def _empty_dict(d: Decoder) -> None:
    d.stack.append({})


def _dict(d: Decoder) -> None:
    items = d.pop_mark()
    if len(items) % 2:
        raise d.corrupt("DICT with an odd number of items")
    result: dict[Any, Any] = {}
    for index in range(0, len(items), 2):
        result[check_key(d, d.settle(items[index]))] = d.settle(items[index + 1])
    d.stack.append(result)


def _empty_set(d: Decoder) -> None:
    d.stack.append(set())


def _frozenset(d: Decoder) -> None:
    d.stack.append(frozenset(check_key(d, d.settle(item)) for item in d.pop_mark()))


def _append(d: Decoder) -> None:
    value = d.settle(d.pop())
    add_items(d, d.settle(d.top()), [value], "append")


def _appends(d: Decoder) -> None:
    items = [d.settle(item) for item in d.pop_mark()]
    add_items(d, d.settle(d.top()), items, "append")


def _setitem(d: Decoder) -> None:
    value = d.settle(d.pop())
    key = d.settle(d.pop())
    add_items(d, d.settle(d.top()), [key, value], "setitem")


def _setitems(d: Decoder) -> None:
    items = [d.settle(item) for item in d.pop_mark()]
    if len(items) % 2:
        raise d.corrupt("SETITEMS with an odd number of items")
    add_items(d, d.settle(d.top()), items, "setitem")


def _additems(d: Decoder) -> None:
    items = [d.settle(item) for item in d.pop_mark()]
    add_items(d, d.settle(d.top()), items, "add")


# -- stack and memo ----------------------------------------------------------------------
def _pop(d: Decoder) -> None:
    if d.stack and not (d.marks and d.marks[-1] == len(d.stack)):
        d.stack.pop()
    elif d.marks:
        d.pop_mark()
    else:
        raise d.corrupt("stack underflow")


def _pop_mark(d: Decoder) -> None:
    d.pop_mark()


def _dup(d: Decoder) -> None:
    d.stack.append(d.top())


def _get(d: Decoder, index: int) -> None:
    try:
        d.stack.append(d.memo[index])
    except KeyError:
        raise d.corrupt(f"memo entry {index} is read before it is written") from None


def _put(d: Decoder, index: int) -> None:
    if index < 0:
        raise d.corrupt("negative memo index")
    d.memo[index] = d.top()


# -- globals and calls -------------------------------------------------------------------
def _token(d: Decoder, module: Any, qualname: Any) -> Token:
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise d.corrupt("STACK_GLOBAL on something other than two strings")
    token = Token(module, qualname, d.protocol)
    d.resolve(d, token)  # refuses a name outside the allow-list before anything else
    return token


def _global(d: Decoder) -> None:
    module = d.readline().decode("utf-8")
    qualname = d.readline().decode("utf-8")
    d.stack.append(_token(d, module, qualname))


def _stack_global(d: Decoder) -> None:
    qualname = d.settle(d.pop())
    module = d.settle(d.pop())
    d.stack.append(_token(d, module, qualname))


def _call(d: Decoder, target: Any, args: Any, kwargs: Any = None, *, new: bool = False) -> Any:
    if not isinstance(args, tuple) or (kwargs is not None and not isinstance(kwargs, dict)):
        raise d.corrupt("a call whose arguments are not a tuple")
    if isinstance(target, Token):
        return d.resolve(d, target).call(d, args, kwargs or {}, new=new)
    if id(target) in d.trusted and callable(target):
        return d.keep_trusted(target(*args, **(kwargs or {})))
    raise UnsafeLoadError(
        f"{d.name}: refused to load: it calls {type(target).__name__} objects, which only "
        "globals (allow-listed by name) may be"
    )


def _reduce(d: Decoder) -> None:
    args = d.settle(d.pop())
    target = d.pop()
    d.stack.append(_call(d, target, args))


def _newobj(d: Decoder) -> None:
    args = d.settle(d.pop())
    target = d.pop()
    d.stack.append(_call(d, target, args, new=True))


def _newobj_ex(d: Decoder) -> None:
    kwargs = d.settle(d.pop())
    args = d.settle(d.pop())
    target = d.pop()
    d.stack.append(_call(d, target, args, kwargs, new=True))


def _inst(d: Decoder) -> None:
    module = d.readline().decode("utf-8")
    qualname = d.readline().decode("utf-8")
    args = tuple(d.settle(item) for item in d.pop_mark())
    d.stack.append(_call(d, _token(d, module, qualname), args))


def _obj(d: Decoder) -> None:
    items = d.pop_mark()
    if not items:
        raise d.corrupt("OBJ without a class")
    d.stack.append(_call(d, items[0], tuple(d.settle(item) for item in items[1:])))


def _build(d: Decoder) -> None:
    state = d.settle(d.pop())
    target = d.top()
    if isinstance(target, Pending):
        if target.used:
            raise d.corrupt("BUILD on an object already in use")
        target.value = target.build(state, d)
        target.used = True
        d.stack[-1] = target.value
        return
    if id(target) in d.trusted:
        trusted_build(target, state)
        return
    raise UnsafeLoadError(
        f"{d.name}: refused to load: it sets the state of a {type(target).__name__} object "
        "(BUILD), which neither forklift nor joblib writes"
    )


STRUCTURE_OPCODES: dict[int, Handler] = {
    ord("("): _mark,
    ord(")"): _empty_tuple,
    ord("t"): _tuple,
    ord("]"): _empty_list,
    ord("l"): _list,
    ord("}"): _empty_dict,
    ord("d"): _dict,
    0x8F: _empty_set,
    0x91: _frozenset,
    ord("a"): _append,
    ord("e"): _appends,
    ord("s"): _setitem,
    ord("u"): _setitems,
    0x90: _additems,
    ord("0"): _pop,
    ord("1"): _pop_mark,
    ord("2"): _dup,
    ord("c"): _global,
    0x93: _stack_global,
    ord("R"): _reduce,
    0x81: _newobj,
    0x92: _newobj_ex,
    ord("i"): _inst,
    ord("o"): _obj,
    ord("b"): _build,
    0x85: _tuple_n(1),
    0x86: _tuple_n(2),
    0x87: _tuple_n(3),
    ord("g"): lambda d: _get(d, int(d.readline())),
    ord("h"): lambda d: _get(d, d.read(1)[0]),
    ord("j"): lambda d: _get(d, _uint32(d)),
    ord("p"): lambda d: _put(d, int(d.readline())),
    ord("q"): lambda d: _put(d, d.read(1)[0]),
    ord("r"): lambda d: _put(d, _uint32(d)),
    0x94: lambda d: _put(d, len(d.memo)),
}
