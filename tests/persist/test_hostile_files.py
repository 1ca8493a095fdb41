"""Hostile files, crafted here by hand: a safe load refuses them with forklift errors only.

Payloads that could crash the interpreter (memory corruption through numpy) run in a child
process, so a regression fails the test instead of killing pytest.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from tests.persist.crafting import Ops, forklift_file, run_child

from forklift.errors import CorruptFileError, ForkliftError, UnsafeLoadError
from forklift.persist import (
    SAFE_GLOBALS,
    dump,
    inspect_file,
    layout,
    load,
    register_compressor,
)
from forklift.persist.safe import scan_globals

np = pytest.importorskip("numpy")

_LYING_OBJECT_STATE = (3, "|", None, None, None, -1, -1, 0)  # "no objects" for an 'O8'


_LOAD_AND_TOUCH = """
    import sys
    from forklift import SAFE_GLOBALS, load
    from forklift.errors import ForkliftError
    try:
        value = load(sys.argv[1], allowed_globals=SAFE_GLOBALS)
    except ForkliftError as error:
        print("refused", type(error).__name__, error)
    else:
        print("loaded", type(value).__name__, repr(value)[:200], value.sum())
"""


def _object_dtype_rebuild() -> bytes:
    # forklift's own array record, with a dtype whose state says "no objects"
    return (
        Ops(5)
        .global_("forklift.persist.arrays", "rebuild_array")
        .mark()
        .bytes_(b"\x41" * 8)
        .dtype("O8", _LYING_OBJECT_STATE)
        .int_(1)
        .raw(b"\x85")
        .text("C")
        .none()
        .tuple_()
        .reduce()
        .stop()
    )


def _object_dtype_reconstruct() -> bytes:
    # numpy's own array pickling (_reconstruct + BUILD) with the same lying dtype
    return (
        Ops(2)
        .global_("numpy.core.multiarray", "_reconstruct")
        .mark()
        .global_("numpy", "ndarray")
        .int_(0)
        .raw(b"\x85")
        .bytes_(b"b")
        .tuple_()
        .reduce()
        .mark()
        .int_(1)
        .int_(1)
        .raw(b"\x85")
        .dtype("O8", _LYING_OBJECT_STATE)
        .raw(b"\x89")
        .bytes_(b"\x41" * 8)
        .tuple_()
        .build()
        .stop()
    )


def _object_dtype_joblib_wrapper() -> bytes:
    # joblib's NumpyArrayWrapper: the raw bytes after BUILD become the object pointers
    ops = Ops(2).global_("joblib.numpy_pickle", "NumpyArrayWrapper").raw(b")\x81")
    ops.raw(b"}").mark()
    ops.text("subclass").global_("numpy", "ndarray")
    ops.text("shape").int_(1).raw(b"\x85")
    ops.text("order").text("C")
    ops.text("dtype").dtype("O8", _LYING_OBJECT_STATE)
    ops.text("allow_mmap").raw(b"\x89")
    ops.raw(b"u").build().raw(b"\x41" * 8)
    return ops.stop()


def _array_interface(owner: tuple[str, str]) -> bytes:
    # an allowed container given __array_interface__ by BUILD, then handed to numpy
    ops = Ops(4).global_(*owner).mark()
    ops.global_("collections", "OrderedDict").raw(b")").reduce()
    ops.raw(b"}").mark().text("__array_interface__").raw(b"}").mark()
    ops.text("data").mark().int_(16).raw(b"\x89").tuple_()
    ops.text("shape").int_(4096).raw(b"\x85")
    ops.text("typestr").text("|u1")
    ops.text("version").int_(3)
    ops.raw(b"u").raw(b"u").build()
    return ops.tuple_().reduce().stop()


MEMORY_PAYLOADS = {
    "object-dtype-rebuild_array": _object_dtype_rebuild,
    "object-dtype-_reconstruct": _object_dtype_reconstruct,
    "object-dtype-joblib-wrapper": _object_dtype_joblib_wrapper,
    "array-interface-matrix": lambda: _array_interface(("numpy", "matrix")),
    "array-interface-masked": lambda: _array_interface(("numpy.ma", "MaskedArray")),
}


@pytest.mark.parametrize("container", ["forklift", "joblib"])
@pytest.mark.parametrize("payload", sorted(MEMORY_PAYLOADS))
def test_memory_corruption_payloads_are_refused(
    tmp_path: Path, payload: str, container: str
) -> None:
    pickled = MEMORY_PAYLOADS[payload]()
    path = tmp_path / "evil.bin"
    path.write_bytes(forklift_file(pickled) if container == "forklift" else pickled)
    result = run_child(_LOAD_AND_TOUCH, path)
    assert result.returncode == 0, f"child died ({result.returncode}): {result.stderr[-800:]}"
    assert result.stdout.startswith("refused"), result.stdout
    assert str(path) in result.stdout
    # the inspector builds nothing either (in this process: a crash would kill pytest,
    # which is the failure); it may describe the file or call it damaged
    try:
        report = inspect_file(path)
    except ForkliftError as error:
        report = None
        message = str(error)
    assert report is not None or str(path) in message


def test_array_records_are_checked_against_their_buffer(tmp_path: Path) -> None:
    def record(data: bytes, dtype: str, shape: tuple[int, ...], order: str = "C") -> bytes:
        ops = Ops(5).global_("forklift.persist.arrays", "rebuild_array").mark().bytes_(data)
        ops.dtype(dtype).mark()
        for n in shape:
            ops.int_(n)
        return ops.tuple_().text(order).none().tuple_().reduce().stop()

    path = tmp_path / "a.fkl"
    path.write_bytes(forklift_file(record(bytes(16), "<f8", (2,))))
    assert load(path, allowed_globals=SAFE_GLOBALS).tolist() == [0.0, 0.0]
    for bad in (
        record(bytes(16), "<f8", (3,)),  # claims more than the buffer holds
        record(bytes(16), "<f8", (2**62, 2**62)),  # overflows a C size
        record(bytes(16), "<f8", (2,), "K"),
        record(bytes(16), "O", (2,)),  # objects from bytes
    ):
        path.write_bytes(forklift_file(bad))
        with pytest.raises(CorruptFileError, match=str(path)):
            load(path, allowed_globals=SAFE_GLOBALS)


def _os_system_behind_pops(marker: Path) -> bytes:
    # os, system, builtins, dict, POP, POP, STACK_GLOBAL: the real stack holds os.system
    ops = Ops(4).text("os").text("system").text("builtins").text("dict").raw(b"00\x93")
    return ops.text(f"touch {marker}").raw(b"\x85").reduce().stop()


def test_scan_follows_the_real_stack(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pickled = _os_system_behind_pops(marker)
    assert scan_globals(pickled) == ["os.system"]
    for path, data in ((tmp_path / "e.fkl", forklift_file(pickled)), (tmp_path / "e.pkl", pickled)):
        path.write_bytes(data)
        assert "os.system" in inspect_file(path).unsafe_globals()
        with pytest.raises(UnsafeLoadError, match=r"os\.system"):
            load(path, allowed_globals=SAFE_GLOBALS)
    assert not marker.exists()


def test_computed_global_names_are_flagged_and_refused(tmp_path: Path) -> None:
    # the module name is the result of a call: no scan can know it
    ops = Ops(4).global_("builtins", "str").mark().text("os").tuple_().reduce()
    pickled = ops.text("system").raw(b"\x93").text("true").raw(b"\x85").reduce().stop()
    assert scan_globals(pickled) == ["builtins.str", "<computed>"]
    path = tmp_path / "c.fkl"
    path.write_bytes(forklift_file(pickled))
    assert "<computed>" in inspect_file(path).unsafe_globals()
    with pytest.raises(UnsafeLoadError, match="<computed>"):
        load(path, allowed_globals=SAFE_GLOBALS)


def test_memo_and_mark_tricks_cannot_hide_a_global(tmp_path: Path) -> None:
    # names parked in the memo, a MARK/POP_MARK in between, then fetched back
    ops = Ops(4).text("posix").raw(b"\x94").text("system").raw(b"\x94")
    ops.mark().text("builtins").text("dict").raw(b"1")  # POP_MARK drops the decoys
    ops.raw(b"h\x00h\x01\x93").text("true").raw(b"\x85").reduce()
    pickled = ops.stop()
    assert scan_globals(pickled) == ["posix.system"]


@pytest.mark.parametrize(
    "payload",
    [
        Ops().global_("builtins", "bytes").int_(2**40).raw(b"\x85").reduce().stop(),
        Ops()
        .global_("builtins", "list")
        .mark()
        .global_("builtins", "range")
        .int_(2**40)
        .raw(b"\x85")
        .reduce()
        .tuple_()
        .reduce()
        .stop(),
        Ops().global_("fractions", "Fraction").text("1e999999999").raw(b"\x85").reduce().stop(),
        # one list referenced from the memo and copied 100 000 times by list()
        Ops()
        .raw(b"]\x94(" + b"K\x01" * 20_000 + b"e0(")
        .raw(b"cbuiltins\nlist\nh\x00\x85R" * 100_000)
        .raw(b"l")
        .stop(),
    ],
    ids=["bytes-count", "list-of-range", "fraction-exponent", "memo-copies"],
)
def test_allowed_constructors_cannot_allocate_what_the_file_does_not_hold(
    tmp_path: Path, payload: bytes
) -> None:
    path = tmp_path / "bomb.fkl"
    path.write_bytes(forklift_file(payload))
    with pytest.raises(CorruptFileError, match=str(path)):
        load(path, allowed_globals=SAFE_GLOBALS)


def test_state_is_refused_on_containers_and_numpy_objects(tmp_path: Path) -> None:
    ops = Ops().global_("collections", "OrderedDict").raw(b")").reduce()
    pickled = ops.raw(b"}").text("x").int_(1).raw(b"s").build().stop()
    path = tmp_path / "s.fkl"
    path.write_bytes(forklift_file(pickled))
    with pytest.raises(UnsafeLoadError, match="BUILD"):
        load(path, allowed_globals=SAFE_GLOBALS)


def test_deep_nesting_loads_or_fails_cleanly(tmp_path: Path) -> None:
    # a list 100 000 deep is fine (built without recursion); a dict key that is a tuple
    # 200 000 deep would overflow the C stack when hashed (a segfault: run in a child)
    deep_list = tmp_path / "deep_list.fkl"
    deep_list.write_bytes(forklift_file(Ops().raw(b"(" * 100_000 + b"l" * 100_000).stop()))
    deep_key = tmp_path / "deep_key.fkl"
    key = Ops().raw(b"}").raw(b")" + b"\x85" * 200_000).int_(1).raw(b"s").stop()
    deep_key.write_bytes(forklift_file(key))
    code = """
        import sys
        from forklift import SAFE_GLOBALS, load
        from forklift.errors import CorruptFileError
        print(type(load(sys.argv[1], allowed_globals=SAFE_GLOBALS)).__name__)
        try:
            load(sys.argv[2], allowed_globals=SAFE_GLOBALS)
        except CorruptFileError as error:
            print("refused", error)
    """
    result = run_child(code, deep_list, deep_key)
    assert result.returncode == 0, f"child died ({result.returncode}): {result.stderr[-800:]}"
    assert result.stdout.splitlines()[0] == "list"
    assert "nested more than" in result.stdout


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # numpy.matrix
def test_every_safe_value_still_loads(tmp_path: Path) -> None:
    value = {
        "scalars": [None, True, 1, -(2**70), 1.5, 2j, "é", b"\x00", bytearray(b"ab")],
        "containers": ((1,), [2], {3}, frozenset({4}), {"k": 5}),
        "stdlib": [
            collections.OrderedDict(a=1),
            collections.Counter("aab"),
            collections.deque([1, 2], maxlen=5),
            datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc),
            datetime.date(2024, 1, 2),
            datetime.timedelta(days=3),
            datetime.time(1, 2),
            decimal.Decimal("1.25"),
            fractions.Fraction(2, 3),
            range(1, 9, 2),
            slice(1, 5),
        ],
        "arrays": [
            np.arange(6, dtype=">i2").reshape(2, 3),
            np.zeros((3, 2), order="F"),
            np.array(["ab", "c"]),
            np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", ">f8", (2,))]),
            np.arange(3).astype("M8[ms]"),
            np.ma.masked_array([1.0, 2.0], mask=[0, 1]),
            np.matrix([[1, 2]]),
            np.array([1, "x", None], dtype=object),
            np.arange(50_000.0),
            np.float32(2.5),
            np.dtype([("x", "i1")], align=True),
        ],
    }
    for protocol in (2, 3, 4, 5):
        path = tmp_path / f"ok{protocol}.fkl"
        dump(value, path, protocol=protocol)
        # kept as stored: the default converts ">i2" to the machine's order, as joblib does
        loaded = load(path, allowed_globals=SAFE_GLOBALS, ensure_native_byte_order=False)
        _assert_same(loaded, value)


def _assert_same(loaded: Any, expected: Any) -> None:
    assert type(loaded) is type(expected)
    if isinstance(expected, np.ndarray):
        assert loaded.dtype == expected.dtype and loaded.dtype.str == expected.dtype.str
        assert loaded.shape == expected.shape
        assert loaded.flags.f_contiguous == expected.flags.f_contiguous
        if expected.dtype.hasobject:
            assert loaded.tolist() == expected.tolist()
        else:
            assert loaded.tobytes() == expected.tobytes()
        if isinstance(expected, np.ma.MaskedArray):
            assert loaded.mask.tolist() == expected.mask.tolist()
    elif isinstance(expected, dict):
        assert list(loaded) == list(expected)
        _assert_same(list(loaded.values()), list(expected.values()))
    elif isinstance(expected, list | tuple):
        assert len(loaded) == len(expected)
        for item, other in zip(loaded, expected, strict=True):
            _assert_same(item, other)
    else:
        assert loaded == expected
        if isinstance(expected, collections.deque):
            assert loaded.maxlen == expected.maxlen


def test_every_failure_is_a_forklift_error_naming_the_file(tmp_path: Path) -> None:
    payloads = [
        b"\x80\x04\x8c\x02\xff\xfe.",  # bad UTF-8
        b"\x80\x04cno_such_module_xyz\nthing\n.",  # a module that is not installed
        b"\x80\x04cbuiltins\nno_such_name\n.",
        b"\x80\x04cbuiltins\nint\n\x8c\x01x\x85R.",  # ValueError inside a constructor
        b"\x80\x04\x8a\x08" + b"\xff" * 8 + b"cbuiltins\nrange\n\x85R.",  # TypeError order
        b"\x80\x04(.",  # STOP with a MARK open
    ]
    for index, payload in enumerate(payloads):
        path = tmp_path / f"p{index}.fkl"
        path.write_bytes(forklift_file(payload))
        for allowed in (None, SAFE_GLOBALS | {"builtins.no_such_name", "no_such_module_xyz.thing"}):
            with pytest.raises(ForkliftError, match=str(path)):
                load(path, allowed_globals=allowed)


_INSPECT = (
    "import sys; from forklift.cli.main import main; sys.exit(main(['inspect', sys.argv[1]]))"
)


def test_inspect_cli_prints_one_escaped_line(tmp_path: Path) -> None:
    hidden = "x\x1b[2K\rdatetime"
    pickled = Ops().global_("os", hidden).stop()
    path = tmp_path / "esc.fkl"
    path.write_bytes(forklift_file(pickled))
    result = run_child(_INSPECT, path)
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    assert "outside SAFE_GLOBALS" in result.stdout
    broken = tmp_path / "broken.fkl"
    broken.write_bytes(forklift_file(b"\x80\x04\xff."))
    result = run_child(_INSPECT, broken)
    assert result.returncode == 3
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_json_index_nested_deep_is_a_corrupt_file(tmp_path: Path) -> None:
    data = bytearray(forklift_file(b"\x80\x04K\x01."))
    path = tmp_path / "j.fkl"
    # replace the index by a deeply nested JSON list with a valid CRC
    offset, _, _, _ = layout.TRAILER.unpack(bytes(data[-layout.TRAILER.size :]))
    index = b"[" * 100_000 + b"]" * 100_000
    body = bytes(data[:offset]) + index
    trailer = layout.TRAILER.pack(
        offset, len(index), layout.checksum("crc32", index), layout.TRAILER_MAGIC
    )
    path.write_bytes(body + trailer)
    with pytest.raises(CorruptFileError, match=str(path)):
        load(path)


class _Deflate:
    """A registered codec: compressed chunks inside forklift's own container."""

    extensions = (".deflate-hostile",)
    parallel = True

    def compress(self, data: memoryview, level: int) -> bytes:
        return zlib.compress(data, level)

    def decompress(self, data: bytes, raw_length: int) -> bytes:
        return zlib.decompress(data)


@pytest.mark.parametrize("flag", [0, layout.FLAG_WRITABLE_MAPPED])
def test_raw_chunks_of_compressed_files_are_always_verified(tmp_path: Path, flag: int) -> None:
    # random bytes do not compress: a registered codec's container stores their chunks raw
    register_compressor("deflate-hostile", _Deflate(), force=True)
    data = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8)
    path = tmp_path / "random.fkl"
    dump({"data": data}, path, compress=("deflate-hostile", 3))
    damaged = bytearray(path.read_bytes())
    assert damaged.startswith(layout.MAGIC), "expected forklift's container"
    damaged[12:16] = flag.to_bytes(4, "little")  # a damaged flag must not silence checks
    offset, length, _, _ = layout.TRAILER.unpack(bytes(damaged[-layout.TRAILER.size :]))
    raw_chunks = [
        chunk
        for section in json.loads(damaged[offset : offset + length])["buffers"]
        for chunk in section["chunks"]
        if not chunk[3]
    ]
    assert raw_chunks, "expected incompressible chunks stored raw"
    damaged[raw_chunks[0][0] + 1000] ^= 0x01
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptFileError, match=str(path)):
        load(path)


def test_raw_blocks_of_codec_streams_are_always_verified(tmp_path: Path) -> None:
    # random bytes stay raw blocks inside a .zst stream: zstd's content checksum covers them
    data = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8)
    path = tmp_path / "random.fkl"
    dump({"data": data}, path, compress="zstd")
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptFileError, match=str(path)):
        load(path)


def test_every_safe_global_has_a_rule_of_its_own() -> None:
    # a SAFE_GLOBALS name without a builder would fall back to pickle's semantics
    from forklift.persist.decoding import safe_rules

    assert set(SAFE_GLOBALS) <= set(safe_rules())


def test_joblib_wrappers_are_refused_outside_joblib_files(tmp_path: Path) -> None:
    ops = Ops().global_("joblib.numpy_pickle", "NumpyArrayWrapper").raw(b")\x81")
    path = tmp_path / "w.fkl"
    path.write_bytes(forklift_file(ops.raw(b"}").build().stop()))
    with pytest.raises(UnsafeLoadError, match="joblib"):
        load(path, allowed_globals=SAFE_GLOBALS)


def test_extension_registry_objects_are_flagged(tmp_path: Path) -> None:
    # EXT1 fetches an object from copyreg's extension registry: a global by number
    pickled = Ops().raw(b"\x82\x07").stop()
    assert scan_globals(pickled) == ["<extension 7>"]
    path = tmp_path / "ext.fkl"
    path.write_bytes(forklift_file(pickled))
    assert inspect_file(path).unsafe_globals() == ("<extension 7>",)
    with pytest.raises(ForkliftError, match=str(path)):
        load(path, allowed_globals=SAFE_GLOBALS)


def test_pops_never_cross_a_mark(tmp_path: Path) -> None:
    # REDUCE's operands may not come from below an open MARK (pickle refuses this too)
    pickled = Ops().global_("builtins", "int").mark().raw(b")R").stop()
    path = tmp_path / "mark.fkl"
    path.write_bytes(forklift_file(pickled))
    for allowed in (None, SAFE_GLOBALS):
        with pytest.raises(CorruptFileError, match=str(path)):
            load(path, allowed_globals=allowed)


def test_joblib_arrays_larger_than_their_file_are_refused(tmp_path: Path) -> None:
    # a 300-byte joblib-format file declaring a 64 GiB array: refused before allocating
    ops = Ops(2).global_("joblib.numpy_pickle", "NumpyArrayWrapper").raw(b")\x81")
    ops.raw(b"}").mark()
    ops.text("subclass").global_("numpy", "ndarray")
    ops.text("shape").int_(1 << 33).raw(b"\x85")
    ops.text("order").text("C")
    ops.text("dtype").dtype("f8", (3, "<", None, None, None, -1, -1, 0))
    ops.text("allow_mmap").raw(b"\x89")
    path = tmp_path / "huge.pkl"
    path.write_bytes(ops.raw(b"u").build().raw(bytes(64)).stop())
    for allowed in (None, SAFE_GLOBALS):
        with pytest.raises(CorruptFileError, match="more than the file holds"):
            load(path, allowed_globals=allowed)


def test_a_writable_mapped_flag_never_silences_verify(tmp_path: Path) -> None:
    # one flipped header bit (the "writable mapped" flag) plus damaged array data: verify=True
    # must still see the damage
    data = np.arange(100_000, dtype=np.float64)
    path = tmp_path / "plain.fkl"
    dump({"data": data}, path)
    damaged = bytearray(path.read_bytes())
    damaged[12:16] = layout.FLAG_WRITABLE_MAPPED.to_bytes(4, "little")
    offset = bytes(damaged).index(data[5_000:5_001].tobytes())
    damaged[offset] ^= 0x01
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptFileError, match="mmap_mode='r\\+'"):
        load(path, verify=True)


def test_a_file_changed_through_a_writable_map_says_why_verify_fails(tmp_path: Path) -> None:
    path = tmp_path / "plain.fkl"
    dump({"data": np.zeros(100_000)}, path)
    mapped = load(path, mmap_mode="r+")
    mapped["data"][7] = 1.0
    mapped["data"].flush()
    del mapped
    with pytest.raises(CorruptFileError, match="verify=False"):
        load(path, verify=True)
    assert load(path)["data"][7] == 1.0
