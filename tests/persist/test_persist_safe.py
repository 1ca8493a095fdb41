"""Safe loading refuses what is not allow-listed; inspect_file reports without executing."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from forklift.errors import UnsafeLoadError
from forklift.persist import SAFE_GLOBALS, dump, inspect_file, layout, load
from forklift.persist.safe import scan_globals

np = pytest.importorskip("numpy")


class _CallsSystem:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _write_joblib_style(path: Path, payload: object) -> None:
    path.write_bytes(pickle.dumps(payload, protocol=4))


def test_refuses_os_system_before_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.fl"
    dump({"data": np.arange(50_000), "evil": _CallsSystem(marker)}, path)
    with pytest.raises(UnsafeLoadError, match=r"posix\.system|os\.system") as info:
        load(path, allowed_globals=SAFE_GLOBALS)
    assert not marker.exists()
    assert info.value.refused
    assert isinstance(info.value, pickle.UnpicklingError)
    report = inspect_file(path)
    assert any(name.endswith(".system") for name in report.unsafe_globals())
    assert not marker.exists()
    # trusting the file (the default, like joblib) runs it
    load(path)
    assert marker.exists()


def test_refuses_in_a_plain_pickle_read_as_joblib(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    _write_joblib_style(path, [1, _CallsSystem(marker)])
    with pytest.raises(UnsafeLoadError):
        load(path, allowed_globals=SAFE_GLOBALS)
    assert not marker.exists()
    report = inspect_file(path)
    assert report.unsafe_globals()
    assert not marker.exists()


def test_computed_stack_global_is_refused_by_find_class(tmp_path: Path) -> None:
    # STACK_GLOBAL whose strings come from a tuple the scan cannot follow
    payload = (
        b"\x80\x04"
        b"\x8c\x02os\x94\x8c\x06system\x94\x86\x94"  # tuple ('os', 'system'), memo 2
        b"0"  # POP the tuple
        b"h\x00h\x01\x93"  # BINGET 0, BINGET 1, STACK_GLOBAL -> os.system
        b"\x8c\x04true\x85R."
    )
    assert scan_globals(payload) == ["os.system"]
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafeLoadError):
        load(path, allowed_globals=SAFE_GLOBALS)


def test_allow_list_accepts_names_and_classes(tmp_path: Path) -> None:
    from collections import OrderedDict
    from fractions import Fraction

    value = {
        "a": np.arange(40_000.0),
        "od": OrderedDict(x=1),
        "f": Fraction(1, 3),
        "c": complex(1, 2),
        "s": {1, 2},
        "fs": frozenset({3}),
        "m": np.ma.masked_array(np.arange(5), mask=[0, 1, 0, 0, 1]),
        "scalar": np.float32(1.5),
        "obj": np.array([1, "a"], dtype=object),
        "dt": np.arange(3).astype("M8[D]"),
    }
    path = tmp_path / "ok.fl"
    dump(value, path)
    loaded = load(path, allowed_globals=SAFE_GLOBALS)
    assert loaded["od"] == value["od"]
    assert loaded["f"] == value["f"]
    assert np.array_equal(loaded["a"], value["a"])

    dump({"path": Path("/x")}, path)
    with pytest.raises(UnsafeLoadError, match="pathlib") as info:
        load(path, allowed_globals=SAFE_GLOBALS)
    refused = info.value.refused
    assert load(path, allowed_globals=SAFE_GLOBALS | set(refused)) == {"path": Path("/x")}
    assert load(path, allowed_globals=[*SAFE_GLOBALS, type(Path("/x"))]) == {"path": Path("/x")}


def test_inspect_lists_arrays_and_format(tmp_path: Path) -> None:
    path = tmp_path / "x.fl"
    dump({"a": np.zeros((500, 40), dtype=">f4", order="F"), "b": [1, 2]}, path, compress="zstd")
    report = inspect_file(path)
    assert report.format == "forklift"
    major, minor = layout.FORMAT_VERSION
    assert report.version == f"{major}.{minor}"
    assert report.compression == "zstd level 2"
    (array,) = report.arrays
    assert (array.dtype, array.shape, array.order, array.nbytes) == (">f4", (500, 40), "F", 80_000)
    assert "forklift.persist.arrays.rebuild_array" in report.globals
    assert "zstd" in report.summary()
