"""``delayed(f)`` hands back the same wrapper for a module-level ``f`` called again (the
generator of ``delayed(f)(x) for x in xs`` calls it once per task), and keeps nothing else."""

from __future__ import annotations

import gc
import weakref

from forklift import delayed


def double(x: int) -> int:
    return 2 * x


def test_module_function_reuses_its_wrapper() -> None:
    assert delayed(double) is delayed(double)
    assert delayed(double)(3) == (double, (3,), {})
    assert delayed(abs) is delayed(abs)


def test_closure_is_not_kept_alive() -> None:
    big = bytearray(10)

    def closure(x: int) -> int:
        return x + len(big)

    assert delayed(closure)(1) == (closure, (1,), {})
    assert delayed(closure) is not delayed(closure)
    probe = weakref.ref(closure)
    del closure
    gc.collect()
    assert probe() is None
