"""Byte sizes written the way users write them: ``"1M"``, ``"512k"``, ``"2 GB"``, ``1_000_000``."""

from __future__ import annotations

import re

from forklift.errors import ConfigurationError

__all__ = ["format_bytes", "parse_bytes"]

# Binary multiples, as joblib's max_nbytes uses them: "1M" is 1024**2 bytes.
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_bytes(value: int | float | str, *, name: str = "size") -> int:
    """Return ``value`` as a number of bytes.

    >>> parse_bytes("1M")
    1048576
    >>> parse_bytes("1.5k")
    1536
    >>> parse_bytes(100)
    100
    """
    if isinstance(value, bool):
        raise ConfigurationError(f"{name} must be a byte count or a size like '1M', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigurationError(f"{name} must not be negative, got {value!r}")
        return int(value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            number, unit = match.groups()
            return int(float(number) * _UNITS[unit.lower()])
    raise ConfigurationError(
        f"{name} must be a byte count or a size like '1M', '512k', '2G'; got {value!r}"
    )


def format_bytes(n_bytes: float) -> str:
    """Render a byte count for people: ``format_bytes(1536) == '1.5 KiB'``."""
    size = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
