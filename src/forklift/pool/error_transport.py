"""A task's exception, sent from a worker to the caller intact: its class, attributes and chain.

Pickling an exception the ordinary way loses it in four common cases:

* its ``__init__`` takes other arguments than it hands to ``super().__init__``
  (``CodeError(code, msg)``): unpickling calls ``CodeError(*error.args)`` and fails;
* one attribute does not pickle (a socket, a lock): the whole exception is lost;
* ``__cause__`` and ``__context__`` are not pickled at all;
* its class was defined in the caller's ``__main__``: the worker can only send the class by
  value (cloudpickle), and unpickling a class by value makes a copy or, when cloudpickle
  recognises the class, overwrites the caller's class's methods with copies.

So the worker packs the error into an :class:`ErrorParcel`: the class, the arguments and each
attribute pickled apart (what does not pickle travels as its ``repr`` and is named in a note),
the chain as parcels of its own, and the exception pickled whole when that round-trips in the
worker. The parcel is an exception whose ``__reduce__`` names :func:`_unpack`, so it can travel
inside any pickled result (a batch outcome) and turns back into the task's exception wherever
it is unpickled. A class from ``__main__`` unpickles as the caller's own class of that name
when it has one (see :mod:`.main_classes`), so the caller's ``except MyError`` matches.

In the caller, rebuilding tries in order (the first that works wins):

1. the exception pickled whole (its own ``__reduce__``, when it round-tripped in the worker;
   only otherwise are its arguments and attributes sent apart, for 2 and 3);
2. ``cls(*args)``, then its attributes (what pickle itself does);
3. ``cls.__new__(cls, *args)``, then its attributes (an ``__init__`` with other parameters);
4. a stand-in: an instance of a subclass of ``cls`` made here, whose message says that the
   exception could not be rebuilt and why. ``except cls`` still catches it.

Rejected: sending only the traceback text and a generic error (what a crash report needs, but
``except MyError`` and ``retry_on`` stop working); pickling with a custom reducer for every
result (it would slow every task to help the rare exception found among results).

Imports only the standard library and :mod:`.main_classes` (a worker loads it).
"""

from __future__ import annotations

import builtins
import copyreg
import pickle
from typing import Any

from forklift.pool.main_classes import dumps as _dumps

__all__ = ["ErrorParcel", "attach_remote_traceback", "pack_error"]

# A chain longer than this (or a cycle) is cut: the rest stays in the traceback text.
_MAX_CHAIN = 32


class ErrorParcel(BaseException):
    """An exception packed by :func:`pack_error`; unpickled, it is the exception again.

    It is a ``BaseException`` only so that it fits where an exception is expected (a batch
    outcome's ``error``); it is never raised.
    """

    def __init__(self, fields: tuple[Any, ...]) -> None:
        super().__init__()
        self.fields = fields

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _unpack, self.fields


def pack_error(error: BaseException) -> ErrorParcel:
    """Pack a task's exception (and its ``__cause__``/``__context__`` chain) to send it."""
    # A reducer registered for every exception class (tblib's ``install()``, which importing
    # dask.distributed runs) would take precedence over the parcel's own ``__reduce__`` and
    # reset the rebuilt exception's chain to the parcel's (empty) one: the parcel pickles
    # only its own way.
    copyreg.dispatch_table.pop(ErrorParcel, None)
    return _pack(error, {id(error): None}, 0)


def _pack(error: BaseException, packed: dict[int, ErrorParcel | None], depth: int) -> ErrorParcel:
    """``packed``: the links packed so far (None while in progress: a cycle, cut there). A link
    met twice (``raise X from e`` in ``except ... as e`` makes ``e`` both the cause and the
    context) reuses its parcel, so that pickle's memo makes it one object again."""
    lost: list[str] = []
    cls = type(error)
    class_blob, exact = _class_blob(cls)
    if not exact:
        lost.append(f"its class {_name(cls)} (it does not pickle; a base class stands in)")
    whole = _whole(error) if exact else None
    args_blob = state_blob = None
    if whole is None:  # the parts are needed only when the whole does not round-trip
        args_blob = _dumps_lenient(tuple(error.args), "argument", lost)
        state_blob = _dumps_lenient(dict(getattr(error, "__dict__", {})), "attribute", lost)
    links: list[ErrorParcel | None] = []
    for linked in (error.__cause__, error.__context__):
        if linked is None or depth >= _MAX_CHAIN:
            links.append(None)
        elif id(linked) in packed:
            links.append(packed[id(linked)])
        else:
            packed[id(linked)] = None
            packed[id(linked)] = _pack(linked, packed, depth + 1)
            links.append(packed[id(linked)])
    fields = (
        class_blob,
        _builtin_base(cls).__name__,
        whole,
        args_blob,
        state_blob,
        _message(error),
        links[0],
        links[1],
        error.__suppress_context__,
        tuple(lost),
    )
    parcel = ErrorParcel(fields)
    packed[id(error)] = parcel
    return parcel


def _class_blob(cls: type) -> tuple[bytes | None, bool]:
    """The class pickled; if it does not pickle, its nearest base class that does."""
    if cls.__module__ == "builtins":
        return None, True  # the receiver finds it by name (the builtin base field)
    for candidate in cls.__mro__:
        try:
            return _dumps(candidate), candidate is cls
        except Exception:
            continue
    return None, False  # pragma: no cover - BaseException always pickles


def _whole(error: BaseException) -> bytes | None:
    """The exception pickled its own way, if that round-trips here (then it will there)."""
    try:
        data = _dumps(error)
        again = pickle.loads(data)
    except Exception:
        return None
    return data if type(again) is type(error) else None


def _dumps_lenient(parts: tuple[Any, ...] | dict[str, Any], what: str, lost: list[str]) -> bytes:
    """Pickle the arguments or the attributes; a part that does not pickle goes as its repr."""
    try:
        return _dumps(parts)
    except Exception:
        pass
    items = parts.items() if isinstance(parts, dict) else enumerate(parts)
    kept: dict[Any, Any] = {}
    for key, value in items:
        kept[key] = value
        try:
            _dumps(value)
        except Exception as reason:
            lost.append(f"{what} {key!r} ({type(value).__name__}: {reason}) travels as its repr")
            kept[key] = _safe_repr(value)
    return _dumps(kept if isinstance(parts, dict) else tuple(kept.values()))


def _builtin_base(cls: type[BaseException]) -> type[BaseException]:
    for candidate in cls.__mro__:
        if candidate.__module__ == "builtins":
            return candidate
    return Exception  # pragma: no cover - every exception class has a builtin base


def _message(error: BaseException) -> str:
    try:
        return f"{_name(type(error))}: {error}"
    except Exception:
        return _name(type(error))


def _name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__} object>"


# -- in the caller ------------------------------------------------------------------------------
def _unpack(
    class_blob: bytes | None,
    builtin_base: str,
    whole: bytes | None,
    args_blob: bytes | None,
    state_blob: bytes | None,
    message: str,
    cause: BaseException | None,
    context: BaseException | None,
    suppress_context: bool,
    lost: tuple[str, ...],
) -> BaseException:
    """Rebuild the exception (see the module docstring for the order of attempts)."""
    problems: list[str] = []
    cls = _load_class(class_blob, builtin_base, problems)
    error = None
    if whole is not None:
        try:
            error = pickle.loads(whole)
        except Exception as reason:
            problems.append(f"unpickling it failed: {reason!r}")
    if error is None and args_blob is not None and state_blob is not None:
        error = _from_parts(cls, args_blob, state_blob, problems)
    if error is None:
        error = _stand_in(cls, message, problems)
    error.__cause__ = cause
    error.__context__ = context
    error.__suppress_context__ = suppress_context
    for text in lost:
        _add_note(error, f"[forklift] lost on the way from the worker: {text}")
    return error


def _load_class(blob: bytes | None, builtin_base: str, problems: list[str]) -> type:
    if blob is not None:
        try:
            cls = pickle.loads(blob)
        except Exception as reason:
            problems.append(f"its class could not be unpickled: {reason!r}")
        else:
            if isinstance(cls, type) and issubclass(cls, BaseException):
                return cls
    base = getattr(builtins, builtin_base, Exception)
    return base if isinstance(base, type) and issubclass(base, BaseException) else Exception


def _from_parts(
    cls: type, args_blob: bytes, state_blob: bytes, problems: list[str]
) -> BaseException | None:
    try:
        args = pickle.loads(args_blob)
        state = pickle.loads(state_blob)
    except Exception as reason:
        problems.append(f"its arguments or attributes could not be unpickled: {reason!r}")
        return None
    error: BaseException | None = None
    try:
        error = cls(*args)
    except Exception as reason:
        problems.append(f"{cls.__name__}(*{_safe_repr(args)}) raised {reason!r}")
        try:
            error = cls.__new__(cls, *args)
            error.args = args
        except Exception as new_reason:
            problems.append(f"{cls.__name__}.__new__ raised {new_reason!r}")
            return None
    if not isinstance(error, BaseException):
        problems.append(f"{cls.__name__}(...) did not make an exception")
        return None
    try:
        error.__dict__.update(state)
    except Exception as reason:
        problems.append(f"its attributes could not be set: {reason!r}")
        return None
    return error


def _stand_in(cls: type[BaseException], message: str, problems: list[str]) -> BaseException:
    """An instance of a subclass of ``cls`` that says it is a stand-in, and why."""
    reasons = "; ".join(problems) or "unknown reason"
    text = f"{message} [forklift could not rebuild this exception in the caller: {reasons}]"
    # The builtin base makes the instance (the user's __new__ and __init__ are what failed);
    # its __init__ and __str__ replace the user's, which expect other arguments.
    base: Any = _builtin_base(cls)
    error: BaseException
    try:
        namespace = {
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__init__": base.__init__,
            "__str__": base.__str__,
        }
        error = base.__new__(type(cls.__name__, (cls,), namespace))
    except Exception:  # a class that cannot be subclassed: keep at least its builtin base
        error = base.__new__(base)
    error.args = (text,)
    error.forklift_not_rebuilt = text  # type: ignore[attr-defined]
    return error


def _add_note(error: BaseException, note: str) -> None:
    add_note = getattr(error, "add_note", None)
    if add_note is not None:  # Python 3.11+
        add_note(note)


def attach_remote_traceback(error: BaseException, remote: BaseException) -> None:
    """Chain ``remote`` (a :class:`~forklift.errors.RemoteTraceback`) at the end of ``error``'s
    displayed chain, so that the worker's traceback prints first and no link is lost; once."""
    tail = error
    seen = {id(error)}
    while type(tail) is not type(remote):
        following = tail.__cause__
        if following is None and not tail.__suppress_context__:
            following = tail.__context__
        if following is None or id(following) in seen:
            break
        seen.add(id(following))
        tail = following
    if tail.__cause__ is None and type(tail) is not type(remote):
        tail.__cause__ = remote
