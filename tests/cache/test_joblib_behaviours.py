"""joblib's small Memory behaviours, observed by running joblib 1.6: async methods, the errors
of bad calls and bad options, PrintTime's lines, CacheWarning emitted once."""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from pathlib import Path

import pytest

from forklift import MemorizedResult, Memory, PrintTime
from forklift.errors import CacheWarning

from .conftest import runs


def test_await_call_and_call_and_shelve_of_an_async_function(
    tmp_path: Path, counter_file: Path
) -> None:
    memory = Memory(tmp_path, verbose=0)

    @memory.cache
    async def fetch(x: int) -> int:
        with counter_file.open("a") as file:
            file.write("run\n")
        await asyncio.sleep(0)
        return x * 3

    async def main() -> tuple[object, ...]:
        output, metadata = await fetch.call(2)  # computes and stores
        cached = await fetch(2)  # a hit
        again, _ = await fetch.call(2)  # computes again, as joblib's call() does
        shelved = await fetch.call_and_shelve(5)
        return output, metadata, cached, again, shelved

    output, metadata, cached, again, shelved = asyncio.run(main())
    assert (output, cached, again) == (6, 6, 6)
    assert isinstance(metadata, dict) and metadata["input_args"] == {"x": "2"}
    assert isinstance(shelved, MemorizedResult) and shelved.get() == 15
    assert runs(counter_file) == 3
    assert fetch.check_call_in_cache(2) and fetch.check_call_in_cache(5)


def test_an_async_function_without_a_location_has_the_same_awaitables() -> None:
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x * 3

    uncached = Memory(None).cache(fetch)

    async def main() -> tuple[object, ...]:
        shelved = await uncached.call_and_shelve(3)
        return await uncached(1), await uncached.call(2), shelved.get()

    assert asyncio.run(main()) == (3, (6, {}), 9)


def test_invalid_cache_validation_callback_is_a_value_error(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0)
    with pytest.raises(ValueError, match=r"cache_validation_callback.*callable.*got 1"):
        memory.cache(abs, cache_validation_callback=1)  # type: ignore[arg-type]


def keyword_only(a: int, *, b: int = 1) -> int:
    return a + b


def positional(a: int, b: int = 1) -> int:
    return a + b


@pytest.mark.parametrize(
    ("function", "args", "kwargs", "phrase"),
    [
        (keyword_only, (1, 2), {}, "Too many arguments"),
        (positional, (1, 2, 3), {}, "Too many arguments"),
        (positional, (1,), {"z": 1}, "Too many keyword arguments"),
        (positional, (), {}, "Wrong number of arguments"),
        (positional, (1,), {"a": 2}, "given both as positional and as keyword"),
    ],
)
def test_calls_that_do_not_fit_the_signature_raise_value_error(
    tmp_path: Path,
    function: object,
    args: tuple[object, ...],
    kwargs: dict[str, object],
    phrase: str,
) -> None:
    cached = Memory(tmp_path, verbose=0).cache(function)
    with pytest.raises(ValueError, match=re.escape(phrase)) as caught:
        cached(*args, **kwargs)
    # Still a TypeError too, as calling the function itself would raise.
    assert isinstance(caught.value, TypeError)
    assert function.__name__ in str(caught.value)  # type: ignore[attr-defined]


CALLED_WITH_HINT = (
    r"(?s)for keyword_only\(a, \*, b=1\): keyword_only\(1, 2\) was called.*'b' by name"
)


def test_keyword_only_passed_by_position_names_the_argument(tmp_path: Path) -> None:
    cached = Memory(tmp_path, verbose=0).cache(keyword_only)
    with pytest.raises(
        ValueError,
        match=CALLED_WITH_HINT,
    ):
        cached(1, 2)


def test_unknown_store_backend_uses_joblibs_key_phrase(tmp_path: Path) -> None:
    # joblib: TypeError("Unknown location <folder>/joblib or backend nope")
    with pytest.raises(TypeError, match=r"Unknown location .* or backend 'nope'") as caught:
        Memory(tmp_path, backend="nope")
    assert isinstance(caught.value, ValueError)  # forklift's ConfigurationError as before
    assert "register_store_backend" in str(caught.value)


def test_print_time_lines_have_joblibs_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "steps.log"
    print_time = PrintTime(logfile=str(log))
    print_time("loaded")
    print_time("all steps", total=True)
    print_time()
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"loaded: \d+\.\ds, \d+\.\dmin", lines[0]), lines
    assert re.fullmatch(r"all steps: \d+\.\d\ds, \d+\.\d min", lines[1]), lines
    assert re.fullmatch(r": \d+\.\ds, \d+\.\dmin", lines[2]), lines
    assert log.read_text().splitlines()[-3:] == lines


def test_a_cache_warning_is_emitted_once_through_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    memory = Memory(tmp_path, verbose=0)
    double = memory.cache(lambda x: x * 2)
    double(4)
    [entry] = tmp_path.rglob("*.entry")
    entry.write_bytes(b"garbage")
    double.__dict__["_hot"].clear()  # read from disk, as a new process would
    with (
        caplog.at_level(logging.DEBUG, logger="forklift"),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        assert double(4) == 8
    assert [w.category for w in caught] == [CacheWarning]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
