"""Array files and their folders, for real: written once, adopted, swept after a SIGKILL, and a
full temp folder gives a clear error."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from forklift.errors import TempSpaceError
from forklift.pool.page_adoption import ADOPT_MIN_BYTES
from forklift.pool.shared_arrays import ArrayFiles
from forklift.pool.temp_space import FOLDER_PREFIX, CallFolders, sweep_orphans

MB = 1 << 20


def anonymous_memory() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon")


def test_the_same_array_is_written_once_and_a_freed_arrays_id_is_not_mistaken(
    tmp_path: Path,
) -> None:
    files = ArrayFiles(threshold=MB, temp_folder=str(tmp_path))
    data = np.arange(MB, dtype=np.float64)
    first = files.reference(data)
    assert first is not None and files.reference(data) is first
    assert files.n_written == 1
    for value in range(5):  # each temporary dies at once; ids get reused
        reference = files.reference(np.full(MB // 8, float(value)))
        assert reference is not None and reference.open()[0] == value
    assert files.reference(np.ones(10)) is None  # under the threshold
    files.close()
    assert not os.path.exists(first.path)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(sys.platform != "linux", reason="page adoption is Linux-only")
def test_adoption_gives_the_callers_pages_back_and_keeps_its_writes_private() -> None:
    data = np.random.default_rng(2).random(ADOPT_MIN_BYTES // 8 + 4096)
    expected_sum = float(data.sum())
    files = ArrayFiles(threshold=MB)
    before = anonymous_memory()
    reference = files.reference(data)
    assert reference is not None and files.n_adopted == 1
    # The array's own pages were replaced by the file's: anonymous memory dropped by ~its size.
    assert before - anonymous_memory() > 0.9 * data.nbytes
    assert float(data.sum()) == expected_sum
    mapped = reference.open()
    original = float(data[100])
    data[100] = -1.0  # the caller's write stays its own
    assert mapped[100] == original and data[100] == -1.0
    del mapped
    files.close()  # the file goes; the caller's array lives on, whole
    data[100] = original
    assert float(data.sum()) == expected_sum


@pytest.mark.skipif(sys.platform != "linux", reason="page adoption is Linux-only")
def test_adoption_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORKLIFT_ADOPT_ARRAYS", "0")
    data = np.ones(ADOPT_MIN_BYTES // 8)
    files = ArrayFiles(threshold=MB)
    assert files.reference(data) is not None and files.n_adopted == 0
    files.close()


def test_adoption_is_skipped_for_writable_worker_maps() -> None:
    files = ArrayFiles(threshold=MB, mmap_mode="r+")
    assert files.reference(np.ones(ADOPT_MIN_BYTES // 8)) is not None
    assert files.n_adopted == 0
    files.close()


def test_sweep_removes_folders_of_dead_owners_only(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = tmp_path / f"{FOLDER_PREFIX}{child.pid}-1-abcd"
    reused = tmp_path / f"{FOLDER_PREFIX}{os.getpid()}-1-abcd"  # our pid, another start time
    foreign = tmp_path / f"{FOLDER_PREFIX}not-ours"
    for folder in (dead, reused, foreign):
        folder.mkdir()
        (folder / "array-1.bin").write_bytes(b"x")
    live = CallFolders(str(tmp_path))
    fd, path = live.create_file(10)  # creating a folder sweeps the others
    os.close(fd)
    assert not dead.exists() and not reused.exists()
    assert foreign.exists() and os.path.exists(path)
    assert sweep_orphans(str(tmp_path)) == []  # our live folder is never swept
    live.close()
    assert sorted(os.listdir(tmp_path)) == [foreign.name]
    shutil.rmtree(foreign)


def run_python(code: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_folders_are_removed_at_interpreter_exit(tmp_path: Path) -> None:
    done = run_python(
        f"""
        from forklift.pool.temp_space import CallFolders
        import os
        fd, path = CallFolders({str(tmp_path)!r}).create_file(1000)
        os.close(fd)
        print(path)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_a_sigkilled_parent_leaves_nothing_after_the_next_run(tmp_path: Path) -> None:
    script = f"""
        import sys, time
        import numpy as np
        from forklift import Parallel, delayed

        def slow(a):
            time.sleep(60)

        print("start", flush=True)
        Parallel(n_jobs=2, temp_folder={str(tmp_path)!r})(
            delayed(slow)(np.ones(1 << 20)) for _ in range(2)
        )
    """
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "start\n"
        deadline = time.monotonic() + 60
        while not [n for n in os.listdir(tmp_path) if n.startswith(FOLDER_PREFIX)]:
            assert time.monotonic() < deadline, "the array folder never appeared"
            time.sleep(0.05)
        time.sleep(0.5)  # let the workers take their tasks
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        parent.stdout.close()  # type: ignore[union-attr]
    (left,) = os.listdir(tmp_path)
    assert left.startswith(f"{FOLDER_PREFIX}{parent.pid}-")
    # The next run that needs a folder there sweeps it.
    done = run_python(
        f"""
        import numpy as np
        from forklift import Parallel, delayed
        print(Parallel(n_jobs=2, temp_folder={str(tmp_path)!r})(
            delayed(np.sum)(np.ones(1 << 20)) for _ in range(1)))
        """
    )
    assert done.returncode == 0, done.stderr
    assert os.listdir(tmp_path) == []
    _wait_for_orphaned_workers(parent.pid)


def _wait_for_orphaned_workers(parent_pid: int) -> None:
    """The killed parent's workers see their socket close and exit; wait for that."""
    import psutil

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        left = [
            p
            for p in psutil.process_iter(["cmdline"])
            if "forklift" in " ".join(p.info["cmdline"] or [])
            and p.ppid() in (1, parent_pid)
            and p.pid != os.getpid()
        ]
        if not left:
            return
        time.sleep(0.1)


UNSHARE = shutil.which("unshare")


def _tiny_tmpfs_works() -> bool:
    if UNSHARE is None or sys.platform != "linux":
        return False
    probe = subprocess.run(
        [UNSHARE, "-rm", "sh", "-c", "mount -t tmpfs -o size=1M tmpfs /mnt"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _tiny_tmpfs_works(), reason="needs unshare -rm to mount a small tmpfs")
def test_a_full_temp_folder_gives_a_clear_error(tmp_path: Path) -> None:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    script = textwrap.dedent(
        f"""
        import os, subprocess, sys
        import numpy as np
        from forklift import Parallel, delayed
        from forklift.errors import TempSpaceError
        try:
            Parallel(n_jobs=2, temp_folder={str(mount_point)!r})(
                delayed(np.sum)(np.ones(1 << 20)) for _ in range(2)  # 8 MB each
            )
        except TempSpaceError as error:
            print("ERROR", error)
        print("LEFT", os.listdir({str(mount_point)!r}))
        """
    )
    done = subprocess.run(
        [
            UNSHARE,  # type: ignore[list-item]
            "-rm",
            "sh",
            "-c",
            f'mount -t tmpfs -o size=4M tmpfs {mount_point} && exec {sys.executable} -c "$0"',
            script,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "no room for a 8.0 MiB array in" in done.stdout, done.stdout + done.stderr
    assert str(mount_point) in done.stdout and "FORKLIFT_TEMP_FOLDER" in done.stdout
    assert "LEFT []" in done.stdout  # the half-made folder was removed too
    assert issubclass(TempSpaceError, OSError)
