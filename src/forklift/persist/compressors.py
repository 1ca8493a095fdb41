"""Compressors (codecs) for dump/load: a tiny protocol, the built-in ones, and the registry.

A Compressor turns one chunk of bytes into a compressed chunk and back. forklift's file
format compresses large buffers in independent chunks, so a compressor never sees a stream:
that keeps memory flat and lets chunks be compressed on several threads when the codec
releases the GIL (``parallel = True``).

``lz4`` and ``zstd`` need optional packages (extras ``forklift[lz4]`` and ``forklift[zstd]``);
they are imported on first use and a missing one raises
:class:`~forklift.errors.CompressorUnavailableError` naming the extra.

Imports only :mod:`forklift.errors`.
"""

from __future__ import annotations

import bz2
import lzma
import os
import threading
import zlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from forklift.errors import (
    CompressorUnavailableError,
    ConfigurationError,
    UnknownCompressorError,
)

__all__ = [
    "Compressor",
    "DEFAULT_LEVEL",
    "CompressionChoice",
    "compressor_names",
    "get_compressor",
    "import_extra",
    "register_compressor",
    "resolve_compression",
]

#: Level used when a compressor is named without one (joblib uses 3 as well).
DEFAULT_LEVEL = 3


@runtime_checkable
class Compressor(Protocol):
    """What a codec provides. ``compress``/``decompress`` work on one whole chunk.

    Attributes:
        extensions: file extensions (with the dot) that select this codec in ``dump``.
        parallel: True if ``compress``/``decompress`` release the GIL and are thread-safe,
            so chunks may be processed on several threads at once.
    """

    @property
    def extensions(self) -> tuple[str, ...]:
        """File extensions (with the dot) that select this codec in ``dump``."""
        ...

    @property
    def parallel(self) -> bool:
        """True if (de)compression releases the GIL and is thread-safe."""
        ...

    def compress(self, data: memoryview, level: int) -> bytes:
        """Return ``data`` compressed at ``level``."""
        ...

    def decompress(self, data: bytes, raw_length: int) -> bytes:
        """Return the ``raw_length`` bytes that ``data`` was compressed from."""
        ...


@dataclass(frozen=True)
class _Zlib:
    wbits: int
    extensions: tuple[str, ...]
    parallel: bool = True

    def compress(self, data: memoryview, level: int) -> bytes:
        compressor = zlib.compressobj(level, zlib.DEFLATED, self.wbits)
        return compressor.compress(data) + compressor.flush()

    def decompress(self, data: bytes, raw_length: int) -> bytes:
        # zlib.decompress's bufsize is only a first guess: a decompressobj with max_length
        # stops at the declared length, so a bomb cannot expand past it.
        decompressor = zlib.decompressobj(self.wbits)
        result = decompressor.decompress(data, raw_length + 1)
        if len(result) > raw_length or not decompressor.eof:
            raise ValueError(f"chunk decompresses past its declared {raw_length} bytes")
        return result


@dataclass(frozen=True)
class _Bz2:
    extensions: tuple[str, ...] = (".bz2",)
    parallel: bool = True

    def compress(self, data: memoryview, level: int) -> bytes:
        return bz2.compress(data, max(1, min(level, 9)))

    def decompress(self, data: bytes, raw_length: int) -> bytes:
        return _bounded(bz2.BZ2Decompressor(), data, raw_length)


@dataclass(frozen=True)
class _Lzma:
    format: int
    extensions: tuple[str, ...]
    parallel: bool = True

    def compress(self, data: memoryview, level: int) -> bytes:
        return lzma.compress(data, format=self.format, preset=max(0, min(level, 9)))

    def decompress(self, data: bytes, raw_length: int) -> bytes:
        return _bounded(lzma.LZMADecompressor(format=self.format), data, raw_length)


def _bounded(decompressor: Any, data: bytes, raw_length: int) -> bytes:
    """Decompress one whole stream, never producing more than ``raw_length`` + 1 bytes."""
    result = decompressor.decompress(data, max_length=raw_length + 1)
    if len(result) > raw_length or not decompressor.eof:
        raise ValueError(f"chunk decompresses past its declared {raw_length} bytes")
    return bytes(result)


def _import_extra(module: str, extra: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise CompressorUnavailableError(
            f"the {extra!r} compressor needs the {module.split('.', maxsplit=1)[0]!r} package: "
            f"pip install 'forklift[{extra}]'"
        ) from exc


#: Public for :mod:`.streams`, which frames lz4 and zstd streams with the same packages.
import_extra = _import_extra


@dataclass(frozen=True)
class _Lz4:
    extensions: tuple[str, ...] = (".lz4",)
    parallel: bool = True

    def compress(self, data: memoryview, level: int) -> bytes:
        block = _import_extra("lz4.block", "lz4")
        # Levels above 2 select lz4's high-compression mode, as lz4.frame does.
        if level >= 3:
            return bytes(
                block.compress(data, mode="high_compression", compression=level, store_size=False)
            )
        return bytes(block.compress(data, store_size=False))

    def decompress(self, data: bytes, raw_length: int) -> bytes:
        block = _import_extra("lz4.block", "lz4")
        return bytes(block.decompress(data, uncompressed_size=raw_length))


class _Zstd:
    extensions: tuple[str, ...] = (".zst", ".zstd")
    parallel: bool = True

    def __init__(self) -> None:
        # zstandard's (de)compressor objects are not safe to share between threads.
        self._local = threading.local()

    def _compressor(self, level: int) -> Any:
        cache: dict[int, Any] = self._local.__dict__.setdefault("compressors", {})
        if level not in cache:
            zstandard = _import_extra("zstandard", "zstd")
            cache[level] = zstandard.ZstdCompressor(level=level)
        return cache[level]

    def compress(self, data: memoryview, level: int) -> bytes:
        return bytes(self._compressor(level).compress(data))

    def decompress(self, data: bytes, raw_length: int) -> bytes:
        decompressor = self._local.__dict__.get("decompressor")
        if decompressor is None:
            zstandard = _import_extra("zstandard", "zstd")
            decompressor = self._local.decompressor = zstandard.ZstdDecompressor()
        # max_output_size is ignored when the frame header states a content size, and a
        # crafted header may state any size: check it against the declared length first.
        zstandard = _import_extra("zstandard", "zstd")
        declared = zstandard.frame_content_size(data)
        if declared not in (-1, raw_length):
            raise ValueError(f"zstd frame claims {declared} bytes, the index {raw_length}")
        return bytes(decompressor.decompress(data, max_output_size=max(raw_length, 1)))


_REGISTRY: dict[str, Compressor] = {
    "zlib": _Zlib(wbits=zlib.MAX_WBITS, extensions=(".z",)),
    "gzip": _Zlib(wbits=zlib.MAX_WBITS | 16, extensions=(".gz",)),
    "bz2": _Bz2(),
    "lzma": _Lzma(format=lzma.FORMAT_ALONE, extensions=(".lzma",)),
    "xz": _Lzma(format=lzma.FORMAT_XZ, extensions=(".xz",)),
    "lz4": _Lz4(),
    "zstd": _Zstd(),
}
_LOCK = threading.Lock()


def register_compressor(name: str, compressor: Compressor, force: bool = False) -> None:
    """Make ``compressor`` available to ``dump(..., compress=name)`` and to ``load``.

    ``compressor`` follows the :class:`Compressor` protocol. Files record the compressor's
    name, so a reader needs the same registration. Registering an existing name raises
    :class:`~forklift.errors.ConfigurationError` unless ``force=True``.

    Examples:
        A codec works on whole chunks; here raw DEFLATE (zlib without its header):

        >>> import io, zlib
        >>> from forklift import dump, load, register_compressor
        >>> class RawDeflate:
        ...     extensions = (".deflate",)   # dump("x.deflate") picks it
        ...     parallel = True              # zlib releases the GIL: chunks on threads
        ...     def compress(self, data, level):
        ...         packer = zlib.compressobj(level, zlib.DEFLATED, -15)
        ...         return packer.compress(data) + packer.flush()
        ...     def decompress(self, data, raw_length):
        ...         return zlib.decompress(data, -15)
        >>> register_compressor("raw-deflate", RawDeflate(), force=True)
        >>> buffer = io.BytesIO()
        >>> _ = dump(b"abc" * 10_000, buffer, compress="raw-deflate")
        >>> len(buffer.getvalue()) < 1_000, load(io.BytesIO(buffer.getvalue())) == b"abc" * 10_000
        (True, True)
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a compressor name must be a non-empty string, not {name!r}")
    if not isinstance(compressor, Compressor):
        raise ConfigurationError(
            f"{compressor!r} is not a Compressor: it needs extensions, parallel, "
            "compress(data, level) and decompress(data, raw_length)"
        )
    with _LOCK:
        if name in _REGISTRY and not force:
            raise ConfigurationError(
                f"a compressor named {name!r} is already registered; pass force=True to replace"
            )
        _REGISTRY[name] = compressor


def compressor_names() -> list[str]:
    """Names of the registered compressors, sorted."""
    return sorted(_REGISTRY)


def get_compressor(name: str) -> Compressor:
    """The compressor registered as ``name``; UnknownCompressorError lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownCompressorError(
            f"unknown compressor {name!r}; known: {', '.join(compressor_names())}"
        ) from None


@dataclass(frozen=True)
class CompressionChoice:
    """The codec and level ``dump`` will use (``name`` None means no compression)."""

    name: str | None
    level: int


#: Builtin codecs accept joblib's levels 0-9, zstd its own 1-22; registered codecs any int.
_LEVELS: dict[str, range] = {
    **dict.fromkeys(("zlib", "gzip", "bz2", "lzma", "xz", "lz4"), range(10)),
    "zstd": range(23),
}


def _bad_level(level: object, name: str | None) -> ConfigurationError:
    levels = list(_LEVELS.get(name or "zlib", range(10)))
    # joblib's wording, so code and searches written for joblib's error still match.
    return ConfigurationError(
        f'Non valid compress level given: "{level}". Possible values are {levels}'
        + (f" for {name!r}" if name is not None else "")
        + "."
    )


def _check_level(level: object, name: str | None) -> int:
    if isinstance(level, bool) or not isinstance(level, int):
        raise _bad_level(level, name)
    allowed = _LEVELS.get(name or "zlib")
    if (allowed is not None and level not in allowed) or level < 0:
        raise _bad_level(level, name)
    return level


def _check_name(name: object) -> str:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise UnknownCompressorError(
            f'Non valid compression method given: "{name}". Possible values are '
            f"{compressor_names()} (register_compressor adds more)."
        )
    return name


#: The level a bare codec name (or a file extension) picks, where it is not DEFAULT_LEVEL:
#: lz4 is chosen for speed, and its levels 3 and up are its slow high-compression mode
#: (joblib's ``compress="lz4"`` uses lz4's fast default too; measured on 256 MB of random
#: float64: level 3 took 4.9 times joblib's time, level 1 is lz4's fast mode).
#: zstd's level 3 (its own default) switches to the "double fast" matcher, which on
#: byte-shuffled float chunks costs far more than it gains; measured dumping 1 GiB of float64
#: (CPU seconds, 2 threads, zstandard 0.25 / libzstd 1.5.7): compressible 5.9 s at level 3,
#: 4.1 s at 2, 3.4 s at 1; random 3.4, 1.7, 1.8 s. Files at level 2 stay below joblib's
#: zlib-3 files: 0.58 of its size for the compressible floats (level 3: 0.52, level 1: 0.77),
#: 0.89 for random floats, 0.67 for small ints, 0.73 for a list of dicts, 0.20 for strings,
#: as at level 3; boolean masks are 1.06 (level 3: 1.05).
_NAMED_DEFAULT_LEVELS: dict[str, int] = {"lz4": 1, "zstd": 2}


def _named_default(name: str) -> int:
    return _NAMED_DEFAULT_LEVELS.get(name, DEFAULT_LEVEL)


def resolve_compression(compress: object, filename: str | None) -> CompressionChoice:
    """Interpret joblib's ``compress`` argument, with the filename's extension as fallback.

    ``compress`` may be an int 0-9 (zlib at that level, 0 = none), a bool (True = level 3),
    None (none), a compressor name, or ``(name, level)``. As in joblib, ``(name, 0)`` means
    no compression, and when no name is given an extension such as ``.gz`` or ``.zst`` picks
    the compressor (a level of 0 then becomes its default: 3, lz4's fast 1, zstd's 2). ``filename``
    is None for file objects: joblib never looks at their name.
    """
    name: str | None = None
    if compress is None or isinstance(compress, bool):
        level = DEFAULT_LEVEL if compress else 0
    elif isinstance(compress, str):
        name = _check_name(compress)
        level = _named_default(name)
    elif isinstance(compress, tuple | list):
        if len(compress) != 2:
            raise ConfigurationError(
                "Compress argument tuple should contain exactly 2 elements: "
                f"(compress method, compress level), you passed {compress!r}"
            )
        name = _check_name(compress[0])
        level = _check_level(compress[1], name)
        if level == 0:
            return CompressionChoice(None, 0)
        return CompressionChoice(name, level)
    else:
        level = _check_level(compress, None)
    if name is not None:
        return CompressionChoice(name, level)
    if filename is not None:
        extension = os.path.splitext(filename)[1].lower()
        for candidate, compressor in sorted(_REGISTRY.items()):
            if extension and extension in compressor.extensions:
                return CompressionChoice(candidate, level or _named_default(candidate))
    if level == 0:
        return CompressionChoice(None, 0)
    return CompressionChoice("zlib", level)
