"""Safe loading: allow-listed globals, a scan of what a pickle would import, and a decoder.

A pickle can import and call any global (``os.system`` included), and even allowed
classes can be abused: numpy's unpickling trusts the state it is given. ``load(...,
allowed_globals=...)`` therefore defends in two steps:

1. :func:`scan_globals` walks the opcodes with :mod:`pickletools` (nothing is executed),
   tracking the real pickle stack, and lists every global the stream names; any name
   outside the allow-list (including ``"<computed>"``, a name built by stack tricks) is
   refused with :class:`~forklift.errors.UnsafeLoadError` before a single object is built.
2. The stream is then decoded by :mod:`forklift.persist.decoding`, not by pickle: it
   constructs each allowed value itself from checked arguments (numpy arrays only from a
   validated dtype, shape and buffer), refuses state (BUILD) on anything but its own
   pending objects, and checks every name again as it is resolved.

A plain load (``allowed_globals=None``) trusts the file and runs pickle, as joblib does.

Imports only :mod:`forklift.errors`.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from collections.abc import Iterable
from typing import Any, cast

from forklift.errors import CorruptFileError, ForkliftError, UnsafeLoadError
from forklift.persist.decoding import decode_bytes
from forklift.persist.decoding.machine import python3_name

__all__ = [
    "SAFE_GLOBALS",
    "refused_globals",
    "normalize_allowed",
    "scan_globals",
    "unpickle",
]

_NUMPY_CORE = ("numpy.core", "numpy._core")

#: Globals a restricted load accepts by default: builtin containers and numbers, a few
#: stdlib value types, numpy arrays, scalars, dtypes, matrices and masked arrays.
SAFE_GLOBALS: frozenset[str] = frozenset(
    [
        *(
            f"builtins.{name}"
            for name in (
                "bool",
                "bytearray",
                "bytes",
                "complex",
                "dict",
                "float",
                "frozenset",
                "int",
                "list",
                "range",
                "set",
                "slice",
                "str",
                "tuple",
            )
        ),
        "_codecs.encode",  # how Python 2 and protocol < 3 pickles spell bytes
        "collections.OrderedDict",
        "collections.deque",
        "collections.Counter",
        "datetime.date",
        "datetime.datetime",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "decimal.Decimal",
        "fractions.Fraction",
        "forklift.persist.arrays.rebuild_array",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.matrix",
        "numpy.matrixlib.defmatrix.matrix",
        "numpy.ma.MaskedArray",
        "numpy.ma.core.MaskedArray",
        "numpy.ma.core._mareconstruct",
        *(
            f"{core}.multiarray.{name}"
            for core in _NUMPY_CORE
            for name in ("_reconstruct", "scalar")
        ),
        *(f"{core}.numeric._frombuffer" for core in _NUMPY_CORE),
        # numpy 2 may name a dtype by its class
        *(
            f"numpy.dtypes.{name}DType"
            for name in (
                "Bool",
                "Int8",
                "Int16",
                "Int32",
                "Int64",
                "UInt8",
                "UInt16",
                "UInt32",
                "UInt64",
                "Float16",
                "Float32",
                "Float64",
                "LongDouble",
                "Complex64",
                "Complex128",
                "CLongDouble",
                "Bytes",
                "Str",
                "Void",
                "DateTime64",
                "TimeDelta64",
                "Object",
            )
        ),
        # joblib's array wrappers: legacy.py maps them to inert local classes
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "joblib.numpy_pickle.NDArrayWrapper",
        "joblib.numpy_pickle.ZNDArrayWrapper",
    ]
)


def normalize_allowed(allowed: Iterable[str | object] | None) -> frozenset[str] | None:
    """Turn names, classes and functions into a set of ``module.qualname`` strings."""
    if allowed is None:
        return None
    if isinstance(allowed, str):
        allowed = [allowed]
    names: set[str] = set()
    for item in allowed:
        if isinstance(item, str):
            names.add(item)
        else:
            module = getattr(item, "__module__", None)
            qualname = getattr(item, "__qualname__", None)
            if not module or not qualname:
                raise TypeError(f"allowed_globals: {item!r} is neither a name nor a class")
            names.add(f"{module}.{qualname}")
    return frozenset(names)


#: What the scan pushes for a value it cannot know (anything but a string or a global).
_UNKNOWN = object()
_MARK = object()
_STRINGS = frozenset(
    [
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
    ]
)
COMPUTED = "<computed>"


def scan_globals(data: bytes, name: str = "<stream>") -> list[str]:
    """Every ``module.qualname`` the pickle ``data`` would import, in order, without running it.

    The scan keeps the real pickle stack (MARK, memo, POP, DUP and every opcode's stack
    effect), holding strings and globals and a placeholder for anything else. A
    ``STACK_GLOBAL`` whose operands are not two known strings is reported as
    ``"<computed>"``, which no allow-list contains, so a restricted load refuses it.
    """
    found: list[str] = []
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    protocol = 0

    def named(module: str, qualname: str) -> str:
        return ".".join(python3_name(module, qualname, protocol))

    def pop() -> Any:
        if not stack or stack[-1] is _MARK:
            raise ValueError("stack underflow")
        return stack.pop()

    def pop_to_mark() -> None:
        while stack and stack[-1] is not _MARK:
            stack.pop()
        if not stack:
            raise ValueError("no MARK to pop to")

    try:
        for opcode, argument, _ in pickletools.genops(io.BytesIO(data)):
            code = opcode.name
            if code == "PROTO":
                protocol = cast(int, argument)
            elif code in _STRINGS:
                # Python 2 strings: a latin-1 load (joblib files) makes them str too
                text = argument.decode("latin-1") if isinstance(argument, bytes) else argument
                stack.append(text if isinstance(text, str) else _UNKNOWN)
            elif code in ("GLOBAL", "INST"):
                module, _, qualname = str(argument).partition(" ")
                found.append(named(module, qualname))
                if code == "INST":
                    pop_to_mark()
                    stack.pop()
                stack.append(_UNKNOWN)
            elif code == "STACK_GLOBAL":
                qualname_value, module_name = pop(), pop()
                if isinstance(module_name, str) and isinstance(qualname_value, str):
                    found.append(named(module_name, qualname_value))
                else:
                    found.append(COMPUTED)
                stack.append(_UNKNOWN)
            elif code == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else _UNKNOWN
            elif code in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[cast(int, argument)] = stack[-1] if stack else _UNKNOWN
            elif code in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo.get(cast(int, argument), _UNKNOWN))
            elif code == "DUP":
                stack.append(stack[-1] if stack else _UNKNOWN)
            elif code == "MARK":
                stack.append(_MARK)
            elif code == "POP":
                if stack:
                    stack.pop()  # a MARK too, as pickle does on an empty frame
            elif code == "STOP":
                break
            elif code.startswith("EXT"):  # an object from copyreg's extension registry
                found.append(f"<extension {argument}>")
                stack.append(_UNKNOWN)
            else:
                _apply_stack_effect(opcode, stack, pop, pop_to_mark)
    except (ValueError, EOFError, KeyError, IndexError, TypeError) as exc:
        raise CorruptFileError(f"{name}: damaged pickle stream ({exc})") from None
    return found


def _apply_stack_effect(opcode: Any, stack: list[Any], pop: Any, pop_to_mark: Any) -> None:
    """Pop what ``opcode`` consumes (per pickletools' description), push placeholders."""
    for item in reversed(opcode.stack_before):
        if item is pickletools.stackslice:
            pop_to_mark()
        elif item is pickletools.markobject:
            if not stack or stack[-1] is not _MARK:
                raise ValueError(f"{opcode.name} without a MARK")
            stack.pop()
        else:
            pop()
    stack.extend(_UNKNOWN for _ in opcode.stack_after)


def refused_globals(data: Any, allowed: frozenset[str], name: str) -> tuple[str, ...]:
    """Every global of the pickle ``data`` outside ``allowed``, sorted (nothing is run)."""
    return tuple(sorted({item for item in scan_globals(data, name) if item not in allowed}))


def unpickle(data: Any, buffers: Iterable[Any], allowed: frozenset[str] | None, name: str) -> Any:
    """Unpickle ``data`` with out-of-band ``buffers``; every failure becomes ours.

    ``allowed`` None trusts the stream: pickle runs it (reading in place, no copy). Otherwise
    :mod:`forklift.persist.decoding` builds the allowed subset itself; pickle never runs.
    """
    view = memoryview(data).cast("B")
    if allowed is not None:
        try:
            return decode_bytes(view, name=name, allowed=allowed, buffers=buffers)
        except UnsafeLoadError as error:
            # name every refused global, not only the first one met (the scan runs nothing)
            try:
                refused = refused_globals(view, allowed, name)
            except CorruptFileError:
                refused = ()
            if not refused or set(refused) <= set(error.refused):
                raise
            raise UnsafeLoadError(
                f"{name}: refused to load: it imports {', '.join(refused)}, not in allowed_globals",
                refused,
            ) from None
    try:
        return pickle.loads(view, buffers=buffers)
    except ForkliftError:
        raise
    except MemoryError:
        raise CorruptFileError(f"{name}: its pickle asks for more memory than there is") from None
    except Exception as exc:
        raise CorruptFileError(
            f"{name}: cannot be unpickled ({type(exc).__name__}: {exc})"
        ) from exc
