"""Settings for parallel calls: ``parallel_config``, ``parallel_backend`` and their precedence.

The settings in force live in one :class:`contextvars.ContextVar` holding a frozen
:class:`Settings`. A ContextVar (not ``threading.local``) is right for both threads and asyncio
tasks: each thread starts from the defaults, each asyncio task starts from a copy of its
creator's settings, and a ``with parallel_config(...)`` block changes only the context it runs in.

Precedence is decided in one place, :func:`resolve_settings`: a value passed explicitly wins,
then the innermost ``parallel_config`` that set it, then the library default. To tell "passed
explicitly" from "left at its default" for parameters whose default is not ``None``
(``verbose=0``, ``max_nbytes="1M"``, ``mmap_mode="r"``), signatures use :func:`default`, which
returns a marked copy of the value that reads, compares and prints like the value itself.

This room imports only :mod:`forklift.errors` and :mod:`forklift._support`; it knows backend
*names*, never backend classes (those live two layers up). What entering a block must also do
with backends - refuse an unknown name or an ``inner_max_num_threads`` the backend ignores,
route joblib (and so scikit-learn) to the configured backend - is plugged in from above:
:data:`PLUGIN_MODULES` are imported at the first ``__enter__`` and register
:func:`add_enter_hook` hooks. Loading them by name keeps ``import forklift`` light and this
room free of upward imports; an entry-point-like seam, not a hidden cycle.
"""

from __future__ import annotations

import contextvars
import dataclasses
import importlib
import numbers
import operator
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, Final

from forklift._support.defaults import (
    INHERIT_NONE,
    RESET,
    default,
    is_default,
    is_default_marker,
)
from forklift._support.naming import MMAP_MODES
from forklift._support.sizes import parse_bytes
from forklift.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_NBYTES",
    "DEFAULT_MMAP_MODE",
    "DEFAULT_VERBOSE",
    "PREFER_VALUES",
    "REQUIRE_VALUES",
    "EnterHook",
    "Settings",
    "add_enter_hook",
    "current_settings",
    "default",
    "entered_settings",
    "is_default",
    "load_plugins",
    "parallel_backend",
    "parallel_config",
    "resolve_settings",
    "validate_n_jobs",
    "as_integer",
]

PREFER_VALUES: Final = (None, "processes", "threads")
REQUIRE_VALUES: Final = (None, "sharedmem")
# The settings whose default is not None. Settings, Parallel and parallel_config take their
# defaults from here (tests/config/test_parameters.py checks the signatures agree).
DEFAULT_VERBOSE: Final = 0
DEFAULT_MAX_NBYTES: Final = "1M"
DEFAULT_MMAP_MODE: Final = "r"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The parallel settings in force: what ``Parallel`` uses for anything not passed to it.

    ``worker_of`` is set inside a worker of a backend (to that backend's name) so that a
    ``Parallel`` nested in a task does not multiply workers.
    """

    backend: Any = None
    n_jobs: int | None = None
    verbose: int = DEFAULT_VERBOSE
    temp_folder: str | None = None
    max_nbytes: int | str | None = DEFAULT_MAX_NBYTES
    mmap_mode: str | None = DEFAULT_MMAP_MODE
    prefer: str | None = None
    require: str | None = None
    inner_max_num_threads: int | None = None
    # A plain dict so snapshots pickle into process workers; treat it as read-only.
    backend_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    worker_of: str | None = None


# Settings is frozen and never mutated, so sharing one default instance is safe.
_CURRENT: contextvars.ContextVar[Settings] = contextvars.ContextVar(
    "forklift_settings",
    default=Settings(),  # noqa: B039
)
# Parameters whose explicit None means "inherit" rather than "set to None".
_NONE_MEANS_UNSET: Final = frozenset(
    {"backend", "n_jobs", "temp_folder", "prefer", "require", "inner_max_num_threads"}
)


def current_settings() -> Settings:
    """The settings in force in this thread or asyncio task."""
    return _CURRENT.get()


def resolve_settings(base: Settings | None = None, **explicit: Any) -> Settings:
    """Overlay the explicitly passed values of ``explicit`` on ``base`` (default: current).

    This is the one function that decides precedence. A value counts as passed unless it is a
    :func:`default` marker, or ``None`` for a parameter where ``None`` means "inherit".
    ``backend_params`` are merged key by key, inner values winning.
    """
    settings = current_settings() if base is None else base
    changes: dict[str, Any] = {}
    for name, value in explicit.items():
        if not _is_passed(name, value):
            continue
        if name == "backend_params":
            changes[name] = {**settings.backend_params, **value}
        else:
            changes[name] = None if value is RESET else value
    if not changes:
        return settings
    return validate_settings(dataclasses.replace(settings, **changes))


def _is_passed(name: str, value: object) -> bool:
    """Whether ``value`` given for parameter ``name`` overrides what is inherited."""
    if name == "backend_params":
        return bool(value)
    if is_default_marker(value):
        return False
    return not (value is None and name in _NONE_MEANS_UNSET)


def as_integer(value: object) -> int | None:
    """``value`` as an int if it is an integer (numpy integers too, bools not), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return operator.index(value)


def _converts_to_int(value: object) -> bool:
    try:
        int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
    return True


def validate_n_jobs(n_jobs: object) -> int | None:
    """Check ``n_jobs`` is None or a non-zero integer; return it as ``int``."""
    if n_jobs is None:
        return None
    number = as_integer(n_jobs)
    if number is None:
        # joblib says "n_jobs could not be converted to int" where int() fails; keep it there.
        lead = "" if _converts_to_int(n_jobs) else "n_jobs could not be converted to int: "
        raise ConfigurationError(
            f"{lead}n_jobs must be an integer (-1 for all CPUs) or None, got {n_jobs!r} "
            f"of type {type(n_jobs).__name__}"
        )
    if number == 0:
        raise ConfigurationError(
            "n_jobs == 0 in Parallel has no meaning: use a positive number of workers, -1 for "
            "all CPUs, -2 for all but one, or None for the configured default"
        )
    return number


def validate_settings(settings: Settings) -> Settings:
    """Raise ConfigurationError naming the first setting that cannot be used; return the
    settings with ``n_jobs`` as a plain ``int`` (a numpy integer passes), so that this is the
    one place ``n_jobs`` is checked and everything after it can trust the value."""
    n_jobs = validate_n_jobs(settings.n_jobs)
    if settings.prefer not in PREFER_VALUES:
        # "prefer=... is not a valid backend hint" is joblib's phrase; code matches on it.
        raise ConfigurationError(
            f"prefer={settings.prefer} is not a valid backend hint, expected one of "
            f"{PREFER_VALUES}: 'threads' or 'processes' suggests a kind of worker, None leaves "
            "the choice to the backend"
        )
    if settings.require not in REQUIRE_VALUES:
        raise ConfigurationError(
            f"require={settings.require} is not a valid backend constraint, expected one of "
            f"{REQUIRE_VALUES}: 'sharedmem' asks for workers that share the caller's memory"
        )
    if settings.mmap_mode not in MMAP_MODES:
        raise ConfigurationError(
            f"mmap_mode must be one of {MMAP_MODES}, got {settings.mmap_mode!r}"
        )
    if settings.max_nbytes is not None:
        parse_bytes(settings.max_nbytes, name="max_nbytes")
    if as_integer(settings.verbose) is None:
        raise ConfigurationError(f"verbose must be an integer, got {settings.verbose!r}")
    threads = settings.inner_max_num_threads
    if threads is not None and (as_integer(threads) or 0) < 1:
        raise ConfigurationError(
            f"inner_max_num_threads must be a positive integer or None, got {threads!r}"
        )
    backend = settings.backend
    if backend is not None and isinstance(backend, str) and not backend:
        raise ConfigurationError("backend must be a backend name or instance, got ''")
    if type(settings.n_jobs) is not type(n_jobs):
        return dataclasses.replace(settings, n_jobs=n_jobs)
    return settings


# A hook sees the settings a block is about to put in force and the names that block set
# itself; it raises to refuse the block, or returns a context manager to hold open with it.
EnterHook = Callable[[Settings, frozenset[str]], AbstractContextManager[object] | None]

# Modules that register enter hooks, imported on the first __enter__ (see the module doc).
PLUGIN_MODULES: Final = ("forklift.integrations.config_hooks",)
_hooks: list[EnterHook] = []
_plugins_lock = threading.Lock()
_loading_lock = threading.Lock()
_plugins_loaded = False


def add_enter_hook(hook: EnterHook) -> None:
    """Run ``hook`` whenever a ``parallel_config`` block is entered (once per hook)."""
    with _plugins_lock:
        if hook not in _hooks:
            _hooks.append(hook)


def load_plugins() -> None:
    """Import :data:`PLUGIN_MODULES` once (they register hooks and name lookups)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    # Another thread waits here until the hooks are all in; a failed import is retried.
    with _loading_lock:
        if not _plugins_loaded:
            for module in PLUGIN_MODULES:
                importlib.import_module(module)
            _plugins_loaded = True


def _enter_hooks() -> list[EnterHook]:
    load_plugins()
    with _plugins_lock:
        return list(_hooks)


@contextmanager
def entered_settings(settings: Settings) -> Iterator[Settings]:
    """Run a block with ``settings`` in force (used to re-enter a snapshot inside workers)."""
    token = _CURRENT.set(settings)
    try:
        yield settings
    finally:
        _CURRENT.reset(token)


class parallel_config:
    """Set defaults for every ``Parallel`` call made inside a ``with`` block.

    Inner blocks inherit what they do not set from outer ones; ``n_jobs=None`` given
    explicitly resets to the backend's default, as in joblib. The block changes only the
    current thread or asyncio task. An argument given to ``Parallel`` itself always wins.
    Entering the block checks the backend: an unknown name, or ``inner_max_num_threads`` for
    a backend that cannot honour it, raises there. When joblib is installed, joblib code
    run inside a block that names a backend - scikit-learn's ``n_jobs`` - runs on that
    forklift backend too (see :mod:`forklift.integrations.joblib`).

    Examples:
        >>> from forklift import Parallel, delayed, parallel_config
        >>> with parallel_config(backend="threading", n_jobs=2):
        ...     Parallel()(delayed(abs)(-i) for i in range(3))
        [0, 1, 2]
        >>> with parallel_config(backend="threading", n_jobs=2):
        ...     with parallel_config(n_jobs=3) as inner:  # the backend is inherited
        ...         inner.settings.backend, inner.settings.n_jobs
        ('threading', 3)
    """

    def __init__(
        self,
        backend: Any = None,
        *,
        n_jobs: int | None = INHERIT_NONE,
        verbose: int = default(DEFAULT_VERBOSE),
        temp_folder: str | None = None,
        max_nbytes: int | str | None = default(DEFAULT_MAX_NBYTES),
        mmap_mode: str | None = default(DEFAULT_MMAP_MODE),
        prefer: str | None = None,
        require: str | None = None,
        inner_max_num_threads: int | None = None,
        **backend_params: Any,
    ) -> None:
        self._explicit: dict[str, Any] = dict(
            backend=backend,
            n_jobs=RESET if n_jobs is None else n_jobs,
            verbose=verbose,
            temp_folder=temp_folder,
            max_nbytes=max_nbytes,
            mmap_mode=mmap_mode,
            prefer=prefer,
            require=require,
            inner_max_num_threads=inner_max_num_threads,
            backend_params=backend_params,
        )
        # Validate now, so a bad value fails where it is written, not at first use.
        self._settings = resolve_settings(Settings(), **self._explicit)
        self._set_here = frozenset(
            name for name, value in self._explicit.items() if _is_passed(name, value)
        )
        self._token: contextvars.Token[Settings] | None = None
        self._held: ExitStack | None = None

    @property
    def settings(self) -> Settings:
        """The settings this block puts in force (once entered: merged with outer blocks)."""
        return self._settings

    def __enter__(self) -> parallel_config:
        if self._token is not None:
            raise ConfigurationError("this parallel_config block is already entered")
        settings = resolve_settings(**self._explicit)
        hooks = _enter_hooks()
        held = ExitStack()
        token = _CURRENT.set(settings)
        try:
            for hook in hooks:
                context = hook(settings, self._set_here)
                if context is not None:
                    held.enter_context(context)
        except BaseException:
            held.close()
            _CURRENT.reset(token)
            raise
        self._settings, self._token, self._held = settings, token, held
        return self

    def __exit__(self, *exc_info: object) -> None:  # the same whether or not it raised
        if self._token is not None:
            held, self._held = self._held, None
            try:
                if held is not None:
                    held.close()
            finally:
                _CURRENT.reset(self._token)
                self._token = None


class parallel_backend(parallel_config):
    """The older spelling of :class:`parallel_config`: ``backend`` first, ``n_jobs=-1``.

    Entering it returns ``(backend, n_jobs)`` as joblib's does.

    Examples:
        >>> from forklift import Parallel, delayed, parallel_backend
        >>> with parallel_backend("threading", n_jobs=2) as (backend, n_jobs):
        ...     Parallel()(delayed(abs)(-i) for i in range(3)), backend, n_jobs
        ([0, 1, 2], 'threading', 2)
    """

    def __init__(
        self,
        backend: Any,
        n_jobs: int = -1,
        inner_max_num_threads: int | None = None,
        **backend_params: Any,
    ) -> None:
        super().__init__(
            backend,
            n_jobs=n_jobs,
            inner_max_num_threads=inner_max_num_threads,
            **backend_params,
        )

    def __enter__(self) -> Any:  # joblib returns a (backend, n_jobs) pair here
        super().__enter__()
        return self.settings.backend, self.settings.n_jobs
