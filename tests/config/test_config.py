from __future__ import annotations

import asyncio
import threading

import pytest

from forklift import Parallel, parallel_backend, parallel_config
from forklift.config import current_settings, default, is_default, resolve_settings
from forklift.errors import ConfigurationError


def test_defaults_outside_any_block() -> None:
    settings = current_settings()
    assert settings.backend is None
    assert settings.n_jobs is None
    assert settings.verbose == 0
    assert settings.max_nbytes == "1M"
    assert settings.mmap_mode == "r"


def test_nested_blocks_inherit_and_restore() -> None:
    with parallel_config(backend="threading", n_jobs=3):
        with parallel_config(verbose=2):
            inner = current_settings()
            assert (inner.backend, inner.n_jobs, inner.verbose) == ("threading", 3, 2)
        outer = current_settings()
        assert (outer.backend, outer.n_jobs, outer.verbose) == ("threading", 3, 0)
    assert current_settings().backend is None


def test_explicit_parallel_argument_beats_config() -> None:
    with parallel_config(n_jobs=3, verbose=5):
        parallel = Parallel(n_jobs=2, verbose=0)
        assert parallel.n_jobs == 2
        assert parallel.verbose == 0  # explicitly passed 0 wins over the block's 5
        assert Parallel().verbose == 5


def test_default_markers() -> None:
    assert is_default(default(0)) and is_default(default("1M")) and is_default(None)
    assert not is_default(0) and not is_default("1M")
    assert default(0) == 0 and default("1M") == "1M"
    assert str(default("r")) == "r"


def test_explicit_none_turns_max_nbytes_off() -> None:
    with parallel_config(max_nbytes=None):
        assert current_settings().max_nbytes is None


def test_parallel_backend_is_the_older_spelling() -> None:
    with parallel_backend("threading") as (backend, n_jobs):
        assert (backend, n_jobs) == ("threading", -1)
        assert current_settings().n_jobs == -1
    with parallel_backend("threading", n_jobs=2, extra_param=1):
        assert current_settings().backend_params == {"extra_param": 1}


def test_settings_are_per_thread() -> None:
    seen: list[object] = []

    def other_thread() -> None:
        seen.append(current_settings().backend)

    with parallel_config(backend="threading"):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert seen == [None]


def test_settings_are_per_asyncio_task() -> None:
    async def task(backend: str, ready: asyncio.Event, other_ready: asyncio.Event) -> str:
        with parallel_config(backend=backend):
            ready.set()
            await other_ready.wait()  # the other task has entered its own block meanwhile
            return str(current_settings().backend)

    async def main() -> list[str]:
        a_ready, b_ready = asyncio.Event(), asyncio.Event()
        return list(
            await asyncio.gather(
                task("threading", a_ready, b_ready), task("sequential", b_ready, a_ready)
            )
        )

    assert asyncio.run(main()) == ["threading", "sequential"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_jobs": 0}, "n_jobs == 0 in Parallel has no meaning"),
        ({"n_jobs": "2"}, "n_jobs must be an integer"),
        ({"n_jobs": 1.5}, "n_jobs must be an integer"),
        ({"n_jobs": True}, "n_jobs must be an integer"),
        ({"prefer": "gpu"}, "prefer=gpu is not a valid backend hint"),
        ({"require": "shared"}, "require=shared is not a valid backend constraint"),
        ({"mmap_mode": "rw"}, "mmap_mode must be one of"),
        ({"max_nbytes": "lots"}, "max_nbytes"),
        ({"verbose": "loud"}, "verbose must be an integer"),
    ],
)
def test_bad_values_fail_where_written(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parallel_config(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=message):
        Parallel(**kwargs)  # type: ignore[arg-type]


def test_bad_inner_max_num_threads() -> None:
    with pytest.raises(ConfigurationError, match="inner_max_num_threads"):
        parallel_config(inner_max_num_threads=0)


def test_unknown_backend_parameter_fails_where_written() -> None:
    with pytest.raises(ConfigurationError, match="does not take"):
        Parallel(n_jobs=2, backend="threading", no_such_option=1)


def test_resolve_keeps_base_when_nothing_passed() -> None:
    base = current_settings()
    assert resolve_settings(base, n_jobs=None, verbose=default(0)) is base


def test_block_cannot_be_entered_twice() -> None:
    block = parallel_config(n_jobs=2)
    with block, pytest.raises(ConfigurationError, match="already entered"), block:
        pass
