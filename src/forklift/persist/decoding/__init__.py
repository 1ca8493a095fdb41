"""The safe decoder: a pickle interpreter for restricted loads that builds values itself.

Modules: :mod:`.machine` (input, stack, memo, budget), :mod:`.scalars` and
:mod:`.structure` (the opcodes), :mod:`.rules` (what an allowed global may do),
:mod:`.builtin_builders` and :mod:`.numpy_builders` (the ``SAFE_GLOBALS`` constructors),
:mod:`.loading` (entry points). Why it exists: see :mod:`forklift.persist.safe`.

Imports only :mod:`forklift.errors` (numpy lazily).
"""

from __future__ import annotations

from forklift.persist.decoding.loading import decode_bytes, decode_stream, safe_rules
from forklift.persist.decoding.machine import Decoder, Pending, Token
from forklift.persist.decoding.rules import Resolver

__all__ = ["Decoder", "Pending", "Resolver", "Token", "decode_bytes", "decode_stream", "safe_rules"]
