"""Large arrays to and from process workers, through Parallel, for real: memory maps of one
file per array per call, no copies, no leftovers."""

from __future__ import annotations

import dataclasses
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import forklift
from forklift import Parallel, cpu_count, delayed
from forklift.pool import shutdown_reusable_executor

BACKENDS = ["loky", "multiprocessing"]
MB = 1 << 20


@pytest.fixture(autouse=True)
def _shared_pool_is_shut_down() -> Iterator[None]:
    yield
    shutdown_reusable_executor(kill_workers=True)


def describe(array: Any, row: int = 0) -> tuple[str, str | None, bool, float]:
    """What a worker sees: the array's type, its file, whether it is writable, a row's sum."""
    return (
        type(array).__name__,
        getattr(array, "filename", None),
        bool(array.flags.writeable),
        float(np.asarray(array[row]).sum()),
    )


def array_folders(base: str = "/dev/shm") -> list[str]:
    mine = f"forklift-arrays-{os.getpid()}-"
    return [name for name in os.listdir(base) if name.startswith(mine)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_file_per_array_per_call_seen_as_a_read_only_memmap(backend: str) -> None:
    data = np.random.default_rng(0).random((64, 4096))  # 2 MB, over the 1M default
    seen = Parallel(n_jobs=2, backend=backend, batch_size=1)(
        delayed(describe)(data, row) for row in range(16)
    )
    assert {kind for kind, _, _, _ in seen} == {"memmap"}
    files = {path for _, path, _, _ in seen}
    assert len(files) == 1  # written once for the 16 tasks
    (path,) = files
    assert path is not None and "forklift-arrays-" in path
    assert not any(writable for _, _, writable, _ in seen)  # mmap_mode="r" by default
    assert [total for _, _, _, total in seen] == pytest.approx(data.sum(axis=1)[:16])
    assert not os.path.exists(path)  # removed when the call ended
    assert array_folders() == []


def stripe_facts(array: Any, row: int) -> tuple[str | None, int, bool, float]:
    """What a worker sees of a striped array: its file, its stripe count, whether it is
    writable, and a row's sum after writing into another row (if it may)."""
    stripes = getattr(array, "forklift_stripes", ((),))[0]
    if array.flags.writeable:
        array[row + 1] = -1.0
    return (
        getattr(array, "filename", None),
        len(stripes),
        bool(array.flags.writeable),
        float(array[row].sum()),
    )


@pytest.mark.skipif(cpu_count() < 2, reason="one CPU: arrays are not striped")
@pytest.mark.parametrize(
    ("backend", "mmap_mode"), [(b, m) for b in BACKENDS for m in "r c".split()]
)
def test_a_large_array_reaches_workers_as_one_memmap_of_several_stripes(
    backend: str, mmap_mode: str
) -> None:
    data = np.random.default_rng(3).random((1024, 9216))  # 72 MB: striped
    expected = data.copy()
    seen = Parallel(n_jobs=2, backend=backend, batch_size=1, mmap_mode=mmap_mode)(
        delayed(stripe_facts)(data, row) for row in range(0, 1024, 128)
    )
    assert len({path for path, _, _, _ in seen}) == 1
    assert all(n_stripes >= 2 for _, n_stripes, _, _ in seen)
    assert all(writable == (mmap_mode == "c") for _, _, writable, _ in seen)
    assert [total for _, _, _, total in seen] == pytest.approx(expected[::128].sum(axis=1))
    assert np.array_equal(data, expected)
    assert not os.path.exists(seen[0][0] or "")
    assert array_folders() == []


@dataclasses.dataclass
class Holder:
    values: np.ndarray
    label: str


def kinds_inside(nested: dict[str, Any], holder: Holder) -> list[str]:
    return [type(nested["a"][0]).__name__, type(holder.values).__name__, holder.label]


@pytest.mark.parametrize("backend", BACKENDS)
def test_arrays_nested_in_containers_and_dataclasses_are_shared(backend: str) -> None:
    big = np.ones(MB)  # 8 MB
    result = Parallel(n_jobs=2, backend=backend)(
        delayed(kinds_inside)({"a": [big]}, Holder(big * 2, "x")) for _ in range(3)
    )
    assert result == [["memmap", "memmap", "x"]] * 3


@pytest.mark.parametrize(
    "options",
    [{"max_nbytes": None}, {"mmap_mode": None}, {"max_nbytes": "100M"}],
    ids=["max_nbytes=None", "mmap_mode=None", "under-threshold"],
)
def test_sharing_turned_off_or_under_the_threshold_pickles(options: dict[str, Any]) -> None:
    big = np.arange(MB, dtype=np.float64)
    seen = Parallel(n_jobs=2, **options)(delayed(describe)(big) for _ in range(2))
    assert [kind for kind, _, _, _ in seen] == ["ndarray", "ndarray"]
    assert seen[0][2] is True  # a private, writable copy


def test_object_arrays_are_pickled() -> None:
    objects = np.array([{"k": i} for i in range(200_000)], dtype=object)
    seen = Parallel(n_jobs=2, max_nbytes=1)(
        delayed(lambda a: (type(a).__name__, a[5]))(objects) for _ in range(2)
    )
    assert seen == [("ndarray", {"k": 5})] * 2


def sum_column(array: np.ndarray, column: int) -> tuple[str | None, float]:
    base = array
    while base is not None and getattr(base, "filename", None) is None:
        base = base.base
    return getattr(base, "filename", None), float(array[:, column].sum())


@pytest.mark.parametrize("backend", BACKENDS)
def test_existing_memmaps_and_their_views_pass_by_reference(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    source = np.memmap(path, dtype=np.float32, mode="w+", shape=(300, 200))
    source[:] = np.arange(300 * 200, dtype=np.float32).reshape(300, 200)
    source.flush()
    reopened = np.memmap(path, dtype=np.float32, mode="r", shape=(300, 200))
    strided = reopened[10:250:3, ::-2]  # neither C- nor F-contiguous, negative strides
    seen = Parallel(n_jobs=2, backend=backend, max_nbytes=1)(
        delayed(sum_column)(view, 1) for view in (reopened, strided, reopened.T)
    )
    assert [file for file, _ in seen] == [str(path)] * 3
    assert [total for _, total in seen] == pytest.approx(
        [reopened[:, 1].sum(), strided[:, 1].sum(), reopened.T[:, 1].sum()]
    )
    assert array_folders() == []  # nothing was rewritten
    del source, reopened, strided


def test_arrays_loaded_with_mmap_mode_are_not_rewritten(tmp_path: Path) -> None:
    forklift.dump(np.arange(4 * MB, dtype=np.float64).reshape(-1, 1024), tmp_path / "a.fk")
    loaded = forklift.load(tmp_path / "a.fk", mmap_mode="r")
    seen = Parallel(n_jobs=2)(delayed(sum_column)(loaded, 3) for _ in range(2))
    assert seen[0][0] == str(tmp_path / "a.fk")
    assert seen[0][1] == pytest.approx(float(loaded[:, 3].sum()))
    del loaded


def write_row(array: np.ndarray, row: int) -> bool:
    array[row] = row
    return bool(array.flags.writeable)


def test_r_plus_lets_workers_write_into_the_users_memmap(tmp_path: Path) -> None:
    shared = np.memmap(tmp_path / "out.bin", dtype=np.float64, mode="w+", shape=(8, 4096))
    Parallel(n_jobs=2, mmap_mode="r+", max_nbytes=1)(
        delayed(write_row)(shared, r) for r in range(8)
    )
    assert [float(shared[r, 0]) for r in range(8)] == list(range(8))
    del shared


def test_copy_on_write_mode_gives_workers_private_writable_maps() -> None:
    data = np.zeros((8, 65536))
    writable = Parallel(n_jobs=2, mmap_mode="c")(delayed(write_row)(data, r) for r in range(1, 8))
    assert all(writable)
    assert not data.any()  # the caller's array is untouched


def test_temp_folder_parameter_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = np.ones((4, MB // 4))
    chosen = tmp_path / "chosen"
    ((_, path, *_),) = Parallel(n_jobs=2, temp_folder=str(chosen))(
        delayed(describe)(data) for _ in range(1)
    )
    assert path and path.startswith(str(chosen) + os.sep)

    monkeypatch.setenv("JOBLIB_TEMP_FOLDER", str(tmp_path / "joblib"))
    ((_, path, *_),) = Parallel(n_jobs=2)(delayed(describe)(data) for _ in range(1))
    assert path and path.startswith(str(tmp_path / "joblib") + os.sep)

    monkeypatch.setenv("FORKLIFT_TEMP_FOLDER", str(tmp_path / "forklift"))  # wins over joblib's
    ((_, path, *_),) = Parallel(n_jobs=2)(delayed(describe)(data) for _ in range(1))
    assert path and path.startswith(str(tmp_path / "forklift") + os.sep)

    with forklift.parallel_config(temp_folder=str(chosen)):
        ((_, path, *_),) = Parallel(n_jobs=2)(delayed(describe)(data) for _ in range(1))
    assert path and path.startswith(str(chosen) + os.sep)
    for folder in (chosen, tmp_path / "joblib", tmp_path / "forklift"):
        assert not [name for name in os.listdir(folder) if name.startswith("forklift-arrays-")]


def test_in_a_with_block_files_go_when_the_next_call_starts_or_the_block_ends() -> None:
    data = np.ones(MB)
    with Parallel(n_jobs=2) as parallel:
        ((_, first, *_),) = parallel(delayed(describe)(data) for _ in range(1))
        assert first is not None and os.path.exists(first)
        ((_, second, *_),) = parallel(delayed(describe)(data) for _ in range(1))
        assert second != first and not os.path.exists(first)
    assert second is not None and not os.path.exists(second)
    assert array_folders() == []


def make_block(value: float, n_bytes: int) -> np.ndarray:
    return np.full(n_bytes // 8, value)


def root_base(array: Any) -> Any:
    """What finally holds an array's memory (following array bases and memoryviews)."""
    while True:
        if isinstance(array, np.ndarray) and array.base is not None:
            array = array.base
        elif isinstance(array, memoryview) and array.obj is not None:
            array = array.obj
        else:
            return array


def test_large_results_arrive_in_shared_memory_without_a_copy() -> None:
    results = Parallel(n_jobs=2)(delayed(make_block)(i, 4 * MB) for i in range(6))
    for i, block in enumerate(results):
        assert block.shape == (MB // 2,) and block[0] == i and block[-1] == i
        assert isinstance(root_base(block), mmap.mmap)  # mapped, not read off a socket
        block[0] = -1  # writable, privately
    small = Parallel(n_jobs=2)(delayed(make_block)(1, 1024) for _ in range(2))
    assert all(not isinstance(root_base(block), mmap.mmap) for block in small)


def peak_memory_of_this_process() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def row_mean_and_peak(array: np.ndarray, row: int) -> tuple[float, int]:
    return float(array[row].mean()), peak_memory_of_this_process()


def test_workers_never_hold_a_copy_of_the_array() -> None:
    data = np.random.default_rng(1).random((256, 65536))  # 128 MB
    means_and_peaks = Parallel(n_jobs=2, batch_size=1)(
        delayed(row_mean_and_peak)(data, row) for row in range(0, 256, 16)
    )
    assert [mean for mean, _ in means_and_peaks] == pytest.approx(data[::16].mean(axis=1))
    # A pickled copy would put the whole 128 MB in each worker.
    assert max(peak for _, peak in means_and_peaks) < data.nbytes // 2


def backing_file_of_frame(frame: Any) -> tuple[str | None, float]:
    values = frame.to_numpy()
    while getattr(values, "base", None) is not None and not hasattr(values, "filename"):
        values = values.base
    return getattr(values, "filename", None), float(frame["a"].sum())


def test_pandas_blocks_are_shared() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": np.arange(300_000, dtype=float), "b": np.ones(300_000)})
    seen = Parallel(n_jobs=2)(delayed(backing_file_of_frame)(frame) for _ in range(2))
    assert seen[0][0] is not None and seen[0][0] == seen[1][0]
    assert seen[0][1] == float(frame["a"].sum())
