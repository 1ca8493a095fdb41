"""Parallel's parameters and defaults, parallel_config's and Settings' agree (one rule, three
signatures: this test is what keeps them one)."""

from __future__ import annotations

import dataclasses
import inspect

from forklift import Parallel, delayed, parallel_config
from forklift._support.defaults import is_default_marker
from forklift.config import Settings

SETTINGS_DEFAULTS = {field.name: field.default for field in dataclasses.fields(Settings)}


def _defaults(callable_: object) -> dict[str, object]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(callable_).parameters.items()  # type: ignore[arg-type]
        if parameter.kind is not inspect.Parameter.VAR_KEYWORD
    }


def test_setting_parameters_default_to_the_settings_defaults() -> None:
    for signature_of in (Parallel, parallel_config):
        for name, value in _defaults(signature_of).items():
            if name not in SETTINGS_DEFAULTS or (name, signature_of) == ("n_jobs", parallel_config):
                continue
            # A setting left out is "not passed": a marked copy of the default (or None).
            assert value is None or is_default_marker(value), (signature_of, name)
            assert value == SETTINGS_DEFAULTS[name], (signature_of, name)


def test_parallel_config_takes_only_settings() -> None:
    assert set(_defaults(parallel_config)) <= set(SETTINGS_DEFAULTS)


def test_a_derived_parallel_keeps_every_argument() -> None:
    parallel = Parallel(n_jobs=2, backend="threading", verbose=0, batch_size=3, retries=1, seed=7)
    derived = parallel(n_jobs=1)
    assert set(derived._arguments) == set(_defaults(Parallel))
    assert {name: value for name, value in derived._arguments.items() if name != "n_jobs"} == {
        name: value for name, value in parallel._arguments.items() if name != "n_jobs"
    }
    assert derived(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]
