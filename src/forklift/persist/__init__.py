"""Persistence: ``dump``/``load`` in forklift's file format, joblib files, safe loading.

Layer 1: imports only :mod:`forklift.errors` and :mod:`forklift._support` (never the pool).
numpy is optional and imported lazily. The format is specified in ``docs/format.md``.
"""

from __future__ import annotations

from forklift.persist.api import dump, load
from forklift.persist.compressors import Compressor, compressor_names, register_compressor
from forklift.persist.inspection import FileReport, inspect_file
from forklift.persist.safe import SAFE_GLOBALS

__all__ = [
    "SAFE_GLOBALS",
    "Compressor",
    "FileReport",
    "compressor_names",
    "dump",
    "inspect_file",
    "load",
    "register_compressor",
]
