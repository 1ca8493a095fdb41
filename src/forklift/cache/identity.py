"""Who a cached function is, and which version of its code: the function's fingerprint.

Identity (where its results live): the module's dotted path and the qualified name. Functions
of ``__main__`` get the script's name added, so two scripts sharing one cache folder do not
mix their ``process`` functions. A worker process does not run the script (its ``__main__`` is
not the script), so a memoized function carries the caller's script name with it when it is
pickled: see :func:`main_script`.

Fingerprint (when its results are stale): a digest of the function's *bytecode*, not its
source text. Bytecode ignores comments, blank lines and formatting by construction; forklift
also drops the docstring and the line-number tables, so editing those never invalidates a
cache, while any change of behaviour does. (Rejected: hashing the source text, as joblib does,
which invalidates on a comment; and a normalised AST, which needs the source - unavailable for
``python -c``, ``exec`` and many notebooks - and fails on lambdas sharing a line.) The price:
a Python upgrade that changes the bytecode recomputes the cache once.

Dependencies: the user's own functions that the cached function reaches through a global
name (``helper(x)``, ``from helpers import clean``) or one module attribute
(``utils.helper(x)``) are fingerprinted too, recursively up to :data:`DEPENDENCY_DEPTH` levels.
"The user's own" means defined in a file outside the standard library, site-packages (any
installed package) and forklift - a helper module beside the script, another package of the
project - or, for code without a file (``python -c``, notebooks), in the same module; and
always the functions of the cached function's own top-level package. (Rejected: "the same
package" alone, which missed ``from helpers import clean`` beside a script and returned stale
results silently; following installed packages too, which would recompute every cache on
each upgrade of numpy.) Each function's own digest is kept as well (``code_digests``), so a
change can be reported by name: "helpers.clean changed". Classes, methods reached through
objects and installed packages are not followed: pin ``version=`` to take control of those.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import os
import site
import sys
import sysconfig
import types
from collections.abc import Callable
from typing import Any

__all__ = [
    "DEPENDENCY_DEPTH",
    "FunctionIdentity",
    "defined_at",
    "escape_part",
    "identify",
    "main_script",
]

DEPENDENCY_DEPTH = 4
# The local store names code version folders "code-<fingerprint>": no name part may look so.
_VERSION_FOLDER = "code-"
_FUNCTION_FLAGS = inspect.CO_OPTIMIZED | inspect.CO_NEWLOCALS
_HAS_DOCSTRING_FLAG: int | None = getattr(inspect, "CO_HAS_DOCSTRING", None)  # 3.14+


@dataclasses.dataclass(frozen=True)
class FunctionIdentity:
    """Where a function's results live and which code produced them.

    ``path`` is the folder parts under the cache root, e.g. ``("pkg", "mod", "f")``;
    ``fingerprint`` changes with the function's behaviour (or is its pinned version);
    ``dependencies`` names the functions whose code is part of the fingerprint, and
    ``code_digests`` gives each one's own digest (``""`` for the function itself), to tell
    which of them changed.
    """

    module: str
    qualname: str
    path: tuple[str, ...]
    fingerprint: str
    dependencies: tuple[str, ...]
    location: str
    code_digests: tuple[tuple[str, str], ...] = ()  # ("", own digest), (callee, its digest)...

    @property
    def display_name(self) -> str:
        return f"{self.module}.{self.qualname}"


def main_script() -> str | None:
    """The name (without extension) of the script running as ``__main__``, if there is one
    (none for ``python -c``, interactive sessions and notebooks)."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if not main_file:
        return None
    return str(main_file).replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]


def identify(
    function: Callable[..., Any],
    version: str | None = None,
    script: str | None = None,
    location: str | None = None,
) -> FunctionIdentity:
    """Identity and fingerprint of ``function`` (``version`` pins the fingerprint).

    ``script`` names the script of a ``__main__`` function when it is not this process's
    (in a worker; ``""``: no script); by default :func:`main_script` is asked. ``location``
    is where the caller found the function defined ("file:line"), for a worker whose copy
    came by value and has no file of its own.
    """
    target = inspect.unwrap(function)
    module = str(getattr(target, "__module__", None) or "__unknown__")
    qualname = str(
        getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or "function"
    )
    module_folder = module
    if module == "__main__":
        stem = script if script is not None else main_script()
        if stem:
            module_folder = f"__main__-{stem}"
    code = getattr(target, "__code__", None)
    parts = _safe_parts(qualname)
    if getattr(target, "__name__", None) == "<lambda>" and code is not None:
        # Lambdas share one name: their line tells two of a module apart.
        parts[-1] = f"{parts[-1]}-line{code.co_firstlineno}"
    path = (*map(escape_part, module_folder.split(".")), *parts)
    if location is None:
        location = defined_at(target)
    if version is not None:
        pinned = "".join(c if c.isalnum() or c in "._-" else "_" for c in str(version))
        return FunctionIdentity(module, qualname, path, f"v-{pinned[:64]}", (), location)
    digest = hashlib.blake2b(digest_size=16)
    found: list[tuple[str, str]] = []
    _fingerprint_into(digest, target, "", found, depth=0, seen=set())
    dependencies = tuple(name for name, _ in found[1:])
    return FunctionIdentity(
        module, qualname, path, digest.hexdigest(), dependencies, location, tuple(found)
    )


def defined_at(function: Callable[..., Any]) -> str:
    """``"file:line"`` of a function's definition (its module's name when it has no code)."""
    code = getattr(inspect.unwrap(function), "__code__", None)
    if code is None:
        return str(getattr(function, "__module__", None) or "__unknown__")
    return f"{code.co_filename}:{code.co_firstlineno}"


def _safe_parts(qualname: str) -> list[str]:
    return [escape_part(part) for part in qualname.split(".")]


def escape_part(part: str) -> str:
    """``part`` of a dotted name as one harmless folder name.

    ``__module__`` and ``__qualname__`` are plain attributes anyone can set: a ``/`` would
    make a folder path leave the cache (and ``clear()`` delete outside it). Letters, digits,
    ``_`` and ``-`` are kept - so ordinary names keep the folders they always had - ``<``
    and ``>`` (of ``<lambda>``, ``<locals>``) become ``_`` as before, and anything else is
    written ``%XX`` (its UTF-8 bytes). An empty part is ``%``, and a part that would pass
    for a code version folder (``code-...``) gets its first letter escaped.
    """
    if part.isidentifier() and not part.startswith(_VERSION_FOLDER):
        return part  # the common case, unchanged and fast
    escaped = "".join(
        character
        if character.isalnum() or character in "_-"
        else "_"
        if character in "<>"
        else "".join(f"%{byte:02X}" for byte in character.encode("utf-8", "surrogatepass"))
        for character in part
    )
    if escaped.startswith(_VERSION_FOLDER):
        escaped = f"%{ord(escaped[0]):02X}{escaped[1:]}"
    return escaped or "%"


def _fingerprint_into(
    digest: Any,
    function: Any,
    name: str,
    found: list[tuple[str, str]],
    depth: int,
    seen: set[int],
) -> None:
    seen.add(id(function))
    code = getattr(function, "__code__", None)
    if code is None:  # a builtin or a callable object: its identity is all we can know
        digest.update(repr(type(function)).encode())
        found.append((name, "builtin"))
        return
    _code_into(digest, code)
    own = hashlib.blake2b(digest_size=8)
    _code_into(own, code)
    found.append((name, own.hexdigest()))
    if depth >= DEPENDENCY_DEPTH:
        return
    for dependency_name, dependency in _dependencies(function, code):
        if id(dependency) in seen:
            continue
        digest.update(b"\x00dep\x00" + dependency_name.encode())
        _fingerprint_into(digest, dependency, dependency_name, found, depth + 1, seen)


def _code_into(digest: Any, code: types.CodeType) -> None:
    digest.update(code.co_code)
    digest.update(repr((code.co_names, code.co_varnames, code.co_freevars)).encode())
    digest.update(repr((code.co_argcount, code.co_kwonlyargcount, code.co_flags)).encode())
    constants = list(code.co_consts)
    if constants and isinstance(constants[0], str) and _first_constant_is_docstring(code):
        constants[0] = None
    for constant in constants:
        if isinstance(constant, types.CodeType):
            digest.update(b"\x00code\x00")
            _code_into(digest, constant)
        else:
            digest.update(_stable_repr(constant).encode())
            digest.update(b"\x00")


def _stable_repr(constant: object) -> str:
    """repr() of a code constant that does not depend on string hash randomisation."""
    if isinstance(constant, frozenset):
        return "frozenset(" + ",".join(sorted(_stable_repr(item) for item in constant)) + ")"
    if isinstance(constant, tuple):
        return "(" + ",".join(_stable_repr(item) for item in constant) + ",)"
    return repr(constant)


def _first_constant_is_docstring(code: types.CodeType) -> bool:
    if _HAS_DOCSTRING_FLAG is not None:
        return bool(code.co_flags & _HAS_DOCSTRING_FLAG)
    # Before 3.14 a function's first constant is its docstring or None.
    return code.co_flags & _FUNCTION_FLAGS == _FUNCTION_FLAGS


def _dependencies(function: Any, code: types.CodeType) -> list[tuple[str, Any]]:
    """The user's functions reached by a global name or one module attribute."""
    namespace = getattr(function, "__globals__", None)
    if not isinstance(namespace, dict):
        return []
    home = getattr(function, "__module__", None)
    names = _all_names(code)
    found: list[tuple[str, Any]] = []
    for name in names:
        value = namespace.get(name)
        if isinstance(value, types.FunctionType) and _is_followed(value, home):
            found.append((f"{value.__module__}.{value.__qualname__}", value))
        elif isinstance(value, types.ModuleType):
            for attribute in names:
                member = getattr(value, attribute, None)
                if (
                    isinstance(member, types.FunctionType)
                    and member.__module__ == value.__name__
                    and _is_followed(member, home)
                ):
                    found.append((f"{member.__module__}.{member.__qualname__}", member))
    return sorted(found, key=lambda pair: pair[0])


def _is_followed(function: types.FunctionType, home: str | None) -> bool:
    """Whether a callee's code is part of the caller's key (see the module docstring)."""
    module = function.__module__
    if _package_of(module) == _package_of(home):
        return True
    filename = function.__code__.co_filename
    if not filename or filename.startswith("<"):
        return False  # no file (exec, notebooks): only the caller's own package above
    return not os.path.abspath(filename).startswith(_installed_prefixes())


@functools.cache
def _installed_prefixes() -> tuple[str, ...]:
    """Folders of code that is not the user's: the standard library, every site-packages
    (of this interpreter and the user's), and forklift itself."""
    folders = {
        sysconfig.get_paths().get(name, "")
        for name in ("stdlib", "platstdlib", "purelib", "platlib")
    }
    folders.update(getattr(site, "getsitepackages", list)())
    folders.add(getattr(site, "getusersitepackages", str)())
    folders.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # forklift
    prefixes = {os.path.join(os.path.abspath(folder), "") for folder in folders if folder}
    # Another environment's packages (a virtualenv on sys.path, a conda env) by their name.
    prefixes.update(
        os.path.join(os.path.abspath(entry), "")
        for entry in sys.path
        if os.path.basename(entry.rstrip("/")) in ("site-packages", "dist-packages")
    )
    return tuple(sorted(prefixes))


def _all_names(code: types.CodeType) -> list[str]:
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names.update(_all_names(constant))
    return sorted(names)


def _package_of(module: str | None) -> str:
    return (module or "").split(".", 1)[0]
