"""Safe loading: allow-listed globals, and a scan of what a pickle would import.

A pickle can import and call any global (``os.system`` included). ``load(...,
allowed_globals=...)`` defends in two steps:

1. :func:`scan_globals` walks the opcodes with :mod:`pickletools` (nothing is executed)
   and lists every global the stream names; any name outside the allow-list is refused
   with :class:`~forklift.errors.UnsafeLoadError` before a single object is built.
2. The unpickler's ``find_class`` checks the allow-list again, so a stream crafted to hide a
   name from the scan (computed with stack tricks) is still refused when it is resolved,
   before the global is fetched.

Imports only :mod:`forklift.errors`.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from collections.abc import Iterable
from typing import Any, cast

from forklift.errors import CorruptFileError, UnsafeLoadError

__all__ = [
    "SAFE_GLOBALS",
    "RestrictedUnpickler",
    "check_stream",
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


def scan_globals(data: bytes, name: str = "<stream>") -> list[str]:
    """Every ``module.qualname`` the pickle ``data`` would import, in order, without running it.

    Names a ``STACK_GLOBAL`` computes from something other than plain strings are reported as
    ``"<computed>"``.
    """
    found: list[str] = []
    pushed: list[str | None] = []  # most recent pushes, strings kept, others as None
    memo: dict[int, str | None] = {}
    try:
        for opcode, argument, _ in pickletools.genops(io.BytesIO(data)):
            code = opcode.name
            if code in ("GLOBAL", "INST"):
                module, _, qualname = str(argument).partition(" ")
                found.append(f"{module}.{qualname}")
                pushed.append(None)
            elif code == "STACK_GLOBAL":
                module_name = pushed[-2] if len(pushed) >= 2 else None
                qualname_value = pushed[-1] if pushed else None
                if isinstance(module_name, str) and isinstance(qualname_value, str):
                    found.append(f"{module_name}.{qualname_value}")
                else:
                    found.append("<computed>")
                del pushed[-2:]
                pushed.append(None)
            elif code in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
                pushed.append(str(argument))
            elif code == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
            elif code in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[cast(int, argument)] = pushed[-1] if pushed else None
            elif code in ("GET", "BINGET", "LONG_BINGET"):
                pushed.append(memo.get(cast(int, argument)))
            elif code == "STOP":
                break
            elif opcode.stack_after:
                pushed.append(None)
            del pushed[:-8]
    except (ValueError, EOFError, KeyError, IndexError) as exc:
        raise CorruptFileError(f"{name}: damaged pickle stream ({exc})") from None
    return found


def check_stream(data: bytes, allowed: frozenset[str], name: str) -> None:
    """Raise UnsafeLoadError naming every global of ``data`` outside ``allowed``."""
    refused = sorted({item for item in scan_globals(data, name) if item not in allowed})
    if refused:
        raise UnsafeLoadError(
            f"{name}: refused to load: it imports {', '.join(refused)}, not in allowed_globals",
            tuple(refused),
        )


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` only resolves allow-listed globals."""

    def __init__(self, file: Any, *, allowed: frozenset[str], name: str, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._allowed = allowed
        self._name = name

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if full not in self._allowed:
            raise UnsafeLoadError(
                f"{self._name}: refused to load: it imports {full}, not in allowed_globals",
                (full,),
            )
        return super().find_class(module, name)


def unpickle(data: Any, buffers: list[Any], allowed: frozenset[str] | None, name: str) -> Any:
    """Unpickle ``data`` with out-of-band ``buffers``; pickle-level damage becomes ours."""
    view = memoryview(data).cast("B")
    try:
        if allowed is None:
            return pickle.loads(view, buffers=buffers)  # reads in place: no copy of the stream
        stream = io.BytesIO(view)
        return RestrictedUnpickler(stream, allowed=allowed, name=name, buffers=buffers).load()
    except (UnsafeLoadError, CorruptFileError):
        raise
    except (pickle.UnpicklingError, EOFError) as exc:
        raise CorruptFileError(f"{name}: damaged pickle stream ({exc})") from exc
