"""forklift.errors: one tree, one public path, and errors that carry their data as fields."""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

import forklift.errors
from forklift import Parallel, delayed, shutdown_reusable_executor
from forklift.errors import (
    ClusterError,
    ClusterWorkerLostError,
    ConfigurationError,
    ForkliftError,
    ForkliftWarning,
    RemoteTraceback,
    TaskTimeoutError,
    TempSpaceError,
    TerminatedWorkerError,
)
from forklift.pool import ProcessPool


@pytest.mark.parametrize("name", forklift.errors.__all__)
def test_every_name_lives_at_the_public_path(name: str) -> None:
    value = getattr(forklift.errors, name)
    assert value.__module__ == "forklift.errors"
    assert pickle.loads(pickle.dumps(value)) is value  # pickled by reference, by that path
    roots = (ForkliftError, ForkliftWarning, RemoteTraceback)
    assert issubclass(value, roots), f"{name} is outside the tree"


def test_fields_are_keywords_after_the_message_and_survive_pickling() -> None:
    error = TerminatedWorkerError("gone", pid=12, exit_status=9, task_label="f (tasks 0-0)")
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.pid, again.exit_status, again.task_label) == (
        "gone",
        12,
        9,
        "f (tasks 0-0)",
    )
    plain = TerminatedWorkerError("gone")  # the old call style still works
    assert (plain.pid, plain.exit_status, plain.task_label) == (None, None, None)
    lost = ClusterWorkerLostError("lost", engine="dask", task_key="k")
    assert (lost.engine, lost.task_key, lost.pid) == ("dask", "k", None)
    assert isinstance(lost, ClusterError) and isinstance(lost, TerminatedWorkerError)
    space = pickle.loads(pickle.dumps(TempSpaceError(28, "full", folder="/x", nbytes=5)))
    assert (space.errno, space.folder, space.nbytes) == (28, "/x", 5)


def test_a_dead_worker_error_carries_pid_status_and_task() -> None:
    try:
        with pytest.raises(TerminatedWorkerError) as caught:
            Parallel(n_jobs=2)(delayed(os._exit)(3) for _ in range(2))
    finally:
        shutdown_reusable_executor()
    error = caught.value
    assert isinstance(error.pid, int) and error.pid > 0
    assert error.exit_status is not None and os.waitstatus_to_exitcode(error.exit_status) == 3
    assert error.task_label is not None and "_exit" in error.task_label


def test_a_task_timeout_error_carries_the_task_and_the_limit() -> None:
    release = threading.Event()
    try:
        results = Parallel(n_jobs=2, backend="threading", task_timeout=0.05, on_error="return")(
            delayed(release.wait)(10) if i == 1 else delayed(abs)(i) for i in range(2)
        )
    finally:
        release.set()
    error = results[1].exception
    assert isinstance(error, TaskTimeoutError)
    assert (error.task, error.timeout) == (1, 0.05)


def test_a_temp_space_error_names_the_folder(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    try:
        with pytest.raises(TempSpaceError) as caught:
            Parallel(n_jobs=2, temp_folder=str(a_file), max_nbytes="1K")(
                delayed(np.sum)(np.ones(1000)) for _ in range(2)
            )
    finally:
        shutdown_reusable_executor()
    assert caught.value.folder == str(a_file)


@pytest.mark.parametrize(
    "options", [{"max_workers": 0}, {"max_workers": 1, "idle_worker_timeout": -1}]
)
def test_pool_option_errors_join_the_tree(options: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError, match=r"must be (a )?positive"):
        ProcessPool(**options)
