"""Memory and memoized functions: the joblib API, hit and miss, and forklift's additions."""

from __future__ import annotations

import asyncio
import datetime
import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from forklift import MemorizedResult, Memory, expires_after
from forklift.cache.memoized import MemorizedFunction, NotMemorizedFunction
from forklift.cache.memoized_async import AsyncMemorizedFunction
from forklift.errors import ConfigurationError


def make_counted(memory: Memory, counter: Path, **options: object) -> MemorizedFunction:
    def add(x: int, y: int = 10, *, scale: int = 1) -> int:
        with counter.open("a") as file:
            file.write("run\n")
        return (x + y) * scale

    return memory.cache(add, **options)  # type: ignore[no-any-return]


def runs(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_second_call_is_served_from_cache(tmp_path: Path, counter_file: Path) -> None:
    add = make_counted(Memory(tmp_path / "c", verbose=0), counter_file)
    assert add(1) == 11
    assert add(1) == 11
    assert runs(counter_file) == 1
    assert add(2) == 12
    assert runs(counter_file) == 2


def test_spellings_of_one_call_share_an_entry(tmp_path: Path, counter_file: Path) -> None:
    add = make_counted(Memory(tmp_path / "c", verbose=0), counter_file)
    assert add(1) == add(x=1) == add(1, 10) == add(1, y=10) == add(y=10, x=1) == 11
    assert runs(counter_file) == 1
    assert add(1, scale=1) == 11
    assert runs(counter_file) == 1  # keyword-only default filled in too
    assert add(1, scale=2) == 22
    assert runs(counter_file) == 2


def test_cache_survives_a_new_memory_object(tmp_path: Path, counter_file: Path) -> None:
    make_counted(Memory(tmp_path / "c", verbose=0), counter_file)(5)
    again = make_counted(Memory(tmp_path / "c", verbose=0), counter_file)
    assert again(5) == 15
    assert runs(counter_file) == 1


def test_ignore(tmp_path: Path, counter_file: Path) -> None:
    add = make_counted(Memory(tmp_path / "c", verbose=0), counter_file, ignore=["y"])
    assert add(1, 10) == 11
    assert add(1, 99) == 11  # y is not part of the key
    assert runs(counter_file) == 1
    with pytest.raises(ConfigurationError, match=r"ignore names \['z'\]"):
        make_counted(Memory(tmp_path / "c", verbose=0), counter_file, ignore=["z"])
    with pytest.raises(ConfigurationError, match="list of argument names"):
        Memory(tmp_path / "c").cache(len, ignore="x")  # type: ignore[arg-type]


def test_parametrised_decorator_and_bare_decorator(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0)

    @memory.cache
    def bare(x: int) -> int:
        return x + 1

    @memory.cache(ignore=["debug"])
    def configured(x: int, debug: bool = False) -> int:
        return x * 2

    assert isinstance(bare, MemorizedFunction)
    assert bare(1) == 2 and configured(3, debug=True) == 6
    assert configured.check_call_in_cache(3, debug=False)
    assert bare.__name__ == "bare" and bare.__wrapped__.__name__ == "bare"  # type: ignore[attr-defined]


def test_location_none_caches_nothing(counter_file: Path) -> None:
    memory = Memory(None)
    add = make_counted(memory, counter_file)
    assert isinstance(add, NotMemorizedFunction)
    add(1)
    add(1)
    assert runs(counter_file) == 2
    assert add.call_and_shelve(1).get() == 11
    assert not add.check_call_in_cache(1)
    assert memory.eval(pow, 2, 5) == 32


def test_call_recomputes_and_returns_metadata(tmp_path: Path, counter_file: Path) -> None:
    add = make_counted(Memory(tmp_path, verbose=0), counter_file)
    add(1)
    output, metadata = add.call(1)
    assert output == 11 and runs(counter_file) == 2
    assert set(metadata) >= {"duration", "time", "input_args"}
    assert metadata["input_args"] == {"x": "1", "y": "10", "scale": "1"}
    add(1)
    assert runs(counter_file) == 2


def test_call_and_shelve(tmp_path: Path, counter_file: Path) -> None:
    add = make_counted(Memory(tmp_path, verbose=0), counter_file)
    shelved = add.call_and_shelve(4)
    assert isinstance(shelved, MemorizedResult)
    assert shelved.get() == 14
    copy = pickle.loads(pickle.dumps(shelved))
    assert copy.get() == 14
    shelved.clear()
    with pytest.raises(KeyError, match="no longer in the cache"):
        copy.get()
    assert runs(counter_file) == 1


def test_check_call_in_cache_computes_nothing(tmp_path: Path, counter_file: Path) -> None:
    add = make_counted(Memory(tmp_path, verbose=0), counter_file)
    assert not add.check_call_in_cache(1)
    add(1)
    assert add.check_call_in_cache(1) and add.check_call_in_cache(x=1, y=10)
    assert runs(counter_file) == 1


def test_clear_function_and_memory(tmp_path: Path, counter_file: Path) -> None:
    memory = Memory(tmp_path, verbose=0)
    add = make_counted(memory, counter_file)
    add(1)
    add.clear()
    add(1)
    assert runs(counter_file) == 2
    memory.clear()
    assert list((tmp_path / "forklift").iterdir()) == []
    add(1)
    assert runs(counter_file) == 3


def test_expires_after(tmp_path: Path, counter_file: Path) -> None:
    add = make_counted(
        Memory(tmp_path, verbose=0),
        counter_file,
        cache_validation_callback=expires_after(seconds=0.3),
    )
    add(1)
    add(1)
    assert runs(counter_file) == 1
    time.sleep(0.4)
    assert not add.check_call_in_cache(1)
    add(1)
    assert runs(counter_file) == 2


@pytest.mark.parametrize(
    "unit", ["days", "seconds", "microseconds", "milliseconds", "minutes", "hours", "weeks"]
)
def test_expires_after_reads_each_unit_as_timedelta_does(unit: str) -> None:
    age = datetime.timedelta(**{unit: 3}).total_seconds()
    still_fresh = expires_after(**{unit: 3})
    assert still_fresh.__qualname__ == f"expires_after({age}s)"
    assert not still_fresh({"time": time.time() - age - 1})
    if age >= 1:  # shorter ages pass while the check runs
        assert still_fresh({"time": time.time() - age * 0.9})


def test_custom_validation_callback_sees_metadata(tmp_path: Path, counter_file: Path) -> None:
    seen: list[dict[str, object]] = []

    def valid_if_fast(metadata: dict[str, object]) -> bool:
        seen.append(metadata)
        return float(metadata["duration"]) < 60  # type: ignore[arg-type]

    add = make_counted(
        Memory(tmp_path, verbose=0), counter_file, cache_validation_callback=valid_if_fast
    )
    add(1)
    add(1)
    assert runs(counter_file) == 1 and seen and "duration" in seen[0]
    with pytest.raises(ConfigurationError, match="callable"):
        Memory(tmp_path).cache(len, cache_validation_callback=3)  # type: ignore[arg-type]


def test_coroutine_functions(tmp_path: Path, counter_file: Path) -> None:
    memory = Memory(tmp_path, verbose=0)

    @memory.cache
    async def fetch(x: int) -> int:
        with counter_file.open("a") as file:
            file.write("run\n")
        await asyncio.sleep(0)
        return x * 3

    assert isinstance(fetch, AsyncMemorizedFunction)

    async def main() -> list[int]:
        return [await fetch(2), await fetch(2), await fetch(x=2)]

    assert asyncio.run(main()) == [6, 6, 6]
    assert runs(counter_file) == 1


def test_methods_hash_self(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0)
    calls: list[int] = []

    class Model:
        def __init__(self, factor: int) -> None:
            self.factor = factor

        @memory.cache
        def predict(self, x: int) -> int:
            calls.append(x)
            return self.factor * x

    assert Model(2).predict(3) == 6
    assert Model(2).predict(3) == 6
    assert Model(5).predict(3) == 15
    assert calls == [3, 3]


def test_numpy_results_and_mmap_mode(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0, mmap_mode="r")
    big = memory.cache(lambda n: np.arange(n, dtype=np.float64))
    first = big(200_000)
    again = big(200_000)
    assert isinstance(again, np.memmap) or isinstance(getattr(again, "base", None), np.memmap)
    assert np.array_equal(first, again)
    assert not again.flags.writeable


def test_verbose_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    square = Memory(tmp_path, verbose=2).cache(lambda x: x * x)
    square(3)
    square(3)
    out = capsys.readouterr().out
    assert "[Memory] Computing" in out and "x=3" in out
    assert "result cached" in out
    assert "Loaded" in out
    Memory(tmp_path, verbose=0).cache(lambda x: x + 1)(1)
    assert capsys.readouterr().out == ""


def test_memory_and_memoized_functions_pickle(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0, bytes_limit="10M")
    assert pickle.loads(pickle.dumps(memory)).location == memory.location
    cached = memory.cache(abs)
    copy = pickle.loads(pickle.dumps(cached))
    assert copy(-3) == 3 and cached.check_call_in_cache(-3)


def test_bad_memory_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="mmap_mode"):
        Memory(tmp_path, mmap_mode="rw")
    with pytest.raises(ConfigurationError, match="location"):
        Memory(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"Unknown location .* or backend 'nowhere'"):
        Memory(tmp_path, backend="nowhere")
    with pytest.raises(ConfigurationError, match="bytes_limit"):
        Memory(tmp_path, bytes_limit="lots")
    with pytest.raises(ConfigurationError, match="needs a function"):
        Memory(tmp_path).cache(42)  # type: ignore[arg-type]


def test_input_files_rerun_when_the_file_changes(tmp_path: Path, counter_file: Path) -> None:
    memory = Memory(tmp_path / "c", verbose=0)
    data = tmp_path / "data.txt"
    data.write_text("one")

    @memory.cache(input_files=["path"])
    def read(path: str) -> str:
        with counter_file.open("a") as file:
            file.write("run\n")
        return Path(path).read_text()

    assert read(str(data)) == "one"
    assert read(str(data)) == "one"
    assert runs(counter_file) == 1
    data.write_text("two")
    assert read(str(data)) == "two"
    assert runs(counter_file) == 2

    @memory.cache(input_files={"path": "mtime"})
    def size(path: str) -> int:
        return len(Path(path).read_text())

    assert size(str(data)) == 3
    data.write_text("three")
    os.utime(data, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert size(str(data)) == 5
    with pytest.raises(ConfigurationError, match="must be one of"):
        memory.cache(size.func, input_files={"path": "size"})


def test_functions_defined_in_main_hit_across_runs(tmp_path: Path, counter_file: Path) -> None:
    script = textwrap.dedent(
        f"""
        from forklift import Memory
        memory = Memory({str(tmp_path / "c")!r}, verbose=0)
        @memory.cache
        def triple(x):
            open({str(counter_file)!r}, "a").write("run\\n")
            return 3 * x
        print(triple(7))
        """
    )
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "21"
    assert runs(counter_file) == 1


@pytest.mark.parametrize("how", ["script", "-c"])
def test_main_functions_share_entries_with_process_workers(tmp_path: Path, how: str) -> None:
    # Process workers do not run the script, so their __main__ is not the caller's: the
    # caller's script name must travel with the memoized function, or the workers' entries
    # land in a folder the caller never reads (and the caller's in one the workers never read).
    code = textwrap.dedent(
        f"""
        from forklift import Memory, Parallel, delayed, shutdown_reusable_executor
        memory = Memory({str(tmp_path / "c")!r}, verbose=0)
        @memory.cache
        def square(n):
            return n * n
        print(Parallel(n_jobs=2)(delayed(square)(n) for n in range(4)))
        print(all(square.check_call_in_cache(n) for n in range(4)))
        square(9)
        print(Parallel(n_jobs=2)(delayed(square.check_call_in_cache)(9) for _ in range(2)))
        shutdown_reusable_executor()
        """
    )
    script = tmp_path / "pipeline.py"
    script.write_text(code)
    command = [str(script)] if how == "script" else ["-c", code]
    done = subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.split("\n")[:3] == ["[0, 1, 4, 9]", "True", "[True, True]"]
    folders = [path.name for path in (tmp_path / "c" / "forklift").iterdir()]
    assert folders == (["__main__-pipeline"] if how == "script" else ["__main__"])


def test_hits_return_fresh_objects(tmp_path: Path) -> None:
    make = Memory(tmp_path, verbose=0).cache(lambda n: list(range(n)))
    first = make(3)
    first.append("mutated by the caller")
    second = make(3)
    second.append("again")
    assert make(3) == [0, 1, 2]


def test_hot_hits_see_clears_and_rewrites_from_elsewhere(
    tmp_path: Path, counter_file: Path
) -> None:
    def numbered(x: int) -> int:
        with counter_file.open("a") as file:
            file.write("run\n")
        return runs(counter_file)  # each computation returns a new number

    cached = Memory(tmp_path, verbose=0).cache(numbered)
    assert cached(1) == 1
    assert cached(1) == 1  # served hot from now on
    elsewhere = Memory(tmp_path, verbose=0).cache(numbered)  # as another process would
    elsewhere.clear()
    assert cached(1) == 2  # the clear was seen: recomputed
    assert elsewhere.call(1)[0] == 3  # rewrites the entry
    assert cached(1) == 3  # the rewrite was seen, not the hot copy of 2


def test_a_failing_function_stores_nothing_and_releases_its_lock(
    tmp_path: Path, counter_file: Path
) -> None:
    memory = Memory(tmp_path, verbose=0)

    @memory.cache
    def fragile(x: int) -> int:
        with counter_file.open("a") as file:
            file.write("run\n")
        if runs(counter_file) == 1:
            raise RuntimeError("first attempt fails")
        return x

    with pytest.raises(RuntimeError, match="first attempt"):
        fragile(1)
    assert not fragile.check_call_in_cache(1)
    assert fragile(1) == 1  # not blocked by a lock left behind, and computed again
    assert fragile(1) == 1
    assert runs(counter_file) == 2


def test_arguments_that_cannot_be_hashed_compute_uncached_with_a_warning(tmp_path: Path) -> None:
    import threading

    from forklift.errors import CacheWarning

    memory = Memory(tmp_path, verbose=0)
    locked = memory.cache(lambda lock, x: x + 1)
    with pytest.warns(CacheWarning, match="cannot be hashed"):
        assert locked(threading.Lock(), 1) == 2
    with pytest.warns(CacheWarning, match="cannot be hashed"):
        assert locked.call_and_shelve(threading.Lock(), 2).get() == 3
    ignoring = memory.cache(lambda lock, x: x + 1, ignore=["lock"])
    assert ignoring(threading.Lock(), 1) == 2  # ignored arguments are not hashed at all


def test_two_lambdas_of_one_module_keep_their_own_entries(tmp_path: Path) -> None:
    memory = Memory(tmp_path, verbose=0)
    calls: list[str] = []
    double = memory.cache(lambda x: calls.append("double") or x * 2)
    triple = memory.cache(lambda x: calls.append("triple") or x * 3)
    assert (double(5), triple(5), double(5), triple(5)) == (10, 15, 10, 15)
    assert calls == ["double", "triple"]  # each computed once; neither evicted the other


def test_the_unhashable_arguments_warning_points_at_the_callers_line(tmp_path: Path) -> None:
    # Both forms share the lookup that warns: the warning must still name this file, the
    # line that called the memoized function, not forklift's own code.
    import threading

    from forklift.errors import CacheWarning

    memory = Memory(tmp_path, verbose=0)
    plain = memory.cache(lambda lock, x: x + 1)

    async def fetch(lock: object, x: int) -> int:
        return x + 1

    coroutine = memory.cache(fetch)

    async def main() -> int:
        return int(await coroutine(threading.Lock(), 1))

    for run in (lambda: plain(threading.Lock(), 1), lambda: asyncio.run(main())):
        with pytest.warns(CacheWarning, match="cannot be hashed") as caught:
            assert run() == 2
        assert [Path(w.filename).name for w in caught] == [Path(__file__).name]
