"""Decompression bombs and false sizes: refused with forklift errors, peak memory bounded.

Each bomb is a tiny pickle followed by 160 MB of zeros, compressed; a forklift chunk that
declares the pickle's few bytes, or a joblib stream, must not expand past what is needed.
Loads run in a child process whose peak RSS is compared with a trivial load's.
"""

from __future__ import annotations

import bz2
import json
import lzma
import zlib
from pathlib import Path
from typing import Any

import pytest
from tests.persist.crafting import CODECS, Ops, forklift_file, run_child

from forklift import SAFE_GLOBALS, load
from forklift.errors import CorruptFileError
from forklift.persist import layout

np = pytest.importorskip("numpy")

_ZEROS = 160 << 20
_PICKLE = Ops(4).int_(7).stop()
#: a load may grow the peak RSS by this much over a trivial load, bombs included
_BOUND = 100 << 20


def _stream(codec: str) -> bytes:
    """``_PICKLE`` and 160 MB of zeros as one ``codec`` stream, compressed piece by piece."""
    packer: Any
    if codec == "lz4":
        import lz4.block

        # a block cannot declare its size: 16 MB is enough to overflow any declared length
        return bytes(lz4.block.compress(_PICKLE + bytes(16 << 20), store_size=False))
    if codec in ("zlib", "gzip"):
        packer = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | (16 if codec == "gzip" else 0))
    elif codec == "bz2":
        packer = bz2.BZ2Compressor(1)
    elif codec in ("lzma", "xz"):
        kind = lzma.FORMAT_ALONE if codec == "lzma" else lzma.FORMAT_XZ
        packer = lzma.LZMACompressor(format=kind, preset=0)
    else:
        import zstandard

        packer = zstandard.ZstdCompressor(level=1).compressobj()
    pieces = [packer.compress(_PICKLE)]
    zeros = bytes(1 << 20)
    pieces.extend(packer.compress(zeros) for _ in range(_ZEROS >> 20))
    pieces.append(packer.flush())
    return b"".join(pieces)


_MEASURE = """
import json, resource, sys
import numpy
from forklift import SAFE_GLOBALS, dump, load
from forklift.errors import ForkliftError

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10

warm = sys.argv[1]
dump({"a": numpy.arange(10)}, warm, compress="zstd")
load(warm); load(warm, allowed_globals=SAFE_GLOBALS)
base = peak()
results = {}
for path in sys.argv[2:]:
    for mode, allowed in (("plain", None), ("safe", SAFE_GLOBALS)):
        try:
            load(path, allowed_globals=allowed)
            outcome = "loaded"
        except ForkliftError as error:
            outcome = type(error).__name__ + (": names the file" if path in str(error) else "")
        except BaseException as error:
            outcome = "NOT A FORKLIFT ERROR " + type(error).__name__
        results[path.rsplit("/", 1)[-1] + " " + mode] = outcome
print(json.dumps({"growth": peak() - base, "results": results}))
"""


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("bombs")
    paths = []
    for codec in CODECS:
        stream = _stream(codec)
        # forklift: the pickle section's one chunk declares the pickle's length
        path = folder / f"forklift-{codec}.fkl"
        path.write_bytes(forklift_file([(stream, len(_PICKLE), 1)], codec=codec))
        paths.append(path)
        if codec != "zstd":  # joblib files: the whole stream compressed (zstd: no magic)
            joblib_stream = stream
            if codec == "lz4":
                import lz4.frame

                joblib_stream = lz4.frame.compress(_PICKLE + bytes(16 << 20))
            path = folder / f"joblib-{codec}.pkl"
            path.write_bytes(joblib_stream)
            paths.append(path)
    return paths


def _huge_claims(folder: Path) -> list[Path]:
    """Small files whose index claims sections far larger than the file."""
    next_buffer = Ops(5).raw(b"\x97").stop()
    tiny = zlib.compress(b"x")
    claims = {
        # 1024 compressed chunks of 64 MiB each: a 64 GiB section from a 60 KB index
        "claim-64GiB.fkl": [[(tiny, 64 << 20, 1)] * 1024],
        # one compressed chunk claiming 1 GiB
        "claim-1GiB-chunk.fkl": [[(tiny, 1 << 30, 1)]],
        # a raw chunk claiming more bytes than the file has
        "claim-raw.fkl": [[(b"x" * 64, 1 << 36, 0)]],
    }
    paths = []
    for name, buffers in claims.items():
        path = folder / name
        path.write_bytes(forklift_file(next_buffer, buffers, codec="zlib"))
        paths.append(path)
    return paths


def test_bombs_and_false_sizes_stay_bounded(bombs: list[Path], tmp_path: Path) -> None:
    paths = bombs + _huge_claims(tmp_path)
    result = run_child(_MEASURE, tmp_path / "warm.fkl", *paths, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    for name, outcome in report["results"].items():
        if name.startswith("joblib-"):
            # joblib streams end at the pickle's STOP: the zeros after it are never read
            assert outcome in ("loaded", "CorruptFileError: names the file"), (name, outcome)
        else:
            assert outcome == "CorruptFileError: names the file", (name, outcome)
    assert report["growth"] < _BOUND, f"peak RSS grew {report['growth'] >> 20} MiB"


def _codec_stream(codec: str, content: bytes, zeros: int) -> bytes:
    """``content`` then ``zeros`` zero bytes as one standard ``codec`` stream, written as
    another tool would (no member sizes recorded), compressed piece by piece."""
    packer: Any
    if codec in ("zlib", "gzip"):
        packer = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | (16 if codec == "gzip" else 0))
    elif codec == "bz2":
        packer = bz2.BZ2Compressor(1)
    elif codec in ("lzma", "xz"):
        kind = lzma.FORMAT_ALONE if codec == "lzma" else lzma.FORMAT_XZ
        packer = lzma.LZMACompressor(format=kind, preset=0)
    elif codec == "lz4":
        import lz4.frame

        packer = lz4.frame.LZ4FrameCompressor()
        pieces = [packer.begin()]
    else:
        import zstandard

        packer = zstandard.ZstdCompressor(level=1).compressobj()
    if codec != "lz4":
        pieces = []
    pieces.append(packer.compress(content))
    block = bytes(1 << 20)
    pieces.extend(packer.compress(block) for _ in range(zeros >> 20))
    pieces.append(packer.flush())
    return b"".join(pieces)


def _small_content() -> bytes:
    """A valid uncompressed forklift file (its header records its length) of ``7``."""
    import io

    from forklift import dump

    buffer = io.BytesIO()
    dump(7, buffer)
    return buffer.getvalue()


def _claiming(content: bytes, length: int) -> bytes:
    """``content`` with its header claiming ``length`` bytes."""
    header = bytearray(content[: layout.HEADER_SIZE])
    layout.SIZE_FIELD.pack_into(header, layout.SIZE_OFFSET, length)
    return bytes(header) + content[layout.HEADER_SIZE :]


@pytest.fixture(scope="module")
def stream_bombs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Codec streams whose content declares a small file and goes on with 160 MB of zeros."""
    folder = tmp_path_factory.mktemp("stream-bombs")
    paths = []
    for codec in CODECS:
        path = folder / f"stream-{codec}.fkl"
        path.write_bytes(_codec_stream(codec, _small_content(), _ZEROS))
        paths.append(path)
    return paths


def test_codec_streams_never_expand_past_their_declared_length(
    stream_bombs: list[Path], tmp_path: Path
) -> None:
    result = run_child(_MEASURE, tmp_path / "warm.fkl", *stream_bombs, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert len(report["results"]) == 2 * len(CODECS)
    for name, outcome in report["results"].items():
        assert outcome == "CorruptFileError: names the file", (name, outcome)
    assert report["growth"] < _BOUND, f"peak RSS grew {report['growth'] >> 20} MiB"


def test_safe_loads_refuse_codec_streams_claiming_too_much(tmp_path: Path) -> None:
    # the content declares (and really holds) 160 MB: honest, but 100s of times the file
    content = _small_content()
    paths = []
    for codec in CODECS:
        path = tmp_path / f"claim-{codec}.fkl"
        declared = len(content) + _ZEROS
        path.write_bytes(_codec_stream(codec, _claiming(content, declared), _ZEROS))
        paths.append(path)
    both = '(("plain", None), ("safe", SAFE_GLOBALS))'
    safe_only = _MEASURE.replace(both, '(("safe", SAFE_GLOBALS),)')
    assert safe_only != _MEASURE
    result = run_child(safe_only, tmp_path / "warm.fkl", *paths, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert len(report["results"]) == len(CODECS)
    for name, outcome in report["results"].items():
        assert outcome == "CorruptFileError: names the file", (name, outcome)
    assert report["growth"] < _BOUND, f"peak RSS grew {report['growth'] >> 20} MiB"
    with pytest.raises(CorruptFileError, match=r"pass max_expansion=\d+ \(or math.inf\)"):
        load(paths[0], allowed_globals=SAFE_GLOBALS)
    # a plain load trusts the claim: it costs the declared length once, not twice
    plain_only = _MEASURE.replace(both, '(("plain", None),)')
    result = run_child(plain_only, tmp_path / "warm.fkl", *paths[:3], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert set(report["results"].values()) == {"CorruptFileError: names the file"}
    assert report["growth"] < _ZEROS + (40 << 20), f"peak RSS grew {report['growth'] >> 20} MiB"


def test_member_records_are_bounded_before_allocating(tmp_path: Path) -> None:
    from forklift import dump

    for codec in ("gzip", "lz4", "zstd"):
        path = tmp_path / f"members.{codec}"
        dump(7, path, compress=codec)
        data = bytearray(path.read_bytes())
        # the first member's record: gzip FK field / skippable frame, raw size after member size
        at = 20 if codec == "gzip" else 16
        for claim, expected in ((0xFFFFFFFF, "a member records"), (1 << 20, "header declares")):
            data[at : at + 4] = claim.to_bytes(4, "little")
            path.write_bytes(bytes(data))
            for allowed in (None, SAFE_GLOBALS):
                with pytest.raises(CorruptFileError, match=expected):
                    load(path, allowed_globals=allowed)


def test_max_expansion_lets_a_trusted_safe_load_through(tmp_path: Path) -> None:
    import math

    from forklift import dump
    from forklift.errors import ConfigurationError

    value = np.zeros(9_000_000)  # 72 MB (over the 64 MiB floor), ~1000 times smaller as gzip
    path = tmp_path / "zeros.gz"
    dump(value, path)
    with pytest.raises(CorruptFileError, match=r"over the limit of max_expansion=200.*pass"):
        load(path, allowed_globals=SAFE_GLOBALS)
    assert np.array_equal(load(path, allowed_globals=SAFE_GLOBALS, max_expansion=math.inf), value)
    assert np.array_equal(load(path, allowed_globals=SAFE_GLOBALS, max_expansion=5000), value)
    assert np.array_equal(load(path), value)  # plain loads trust the file: no ratio limit
    with pytest.raises(CorruptFileError, match="max_expansion=10"):
        load(path, max_expansion=10)
    for wrong in (0, -1.0, "100", True):
        with pytest.raises(ConfigurationError, match="max_expansion"):
            load(path, max_expansion=wrong)  # type: ignore[arg-type]
