from __future__ import annotations

import pytest

from forklift._support.arithmetic import evaluate_expression
from forklift._support.sizes import format_bytes, parse_bytes
from forklift.errors import ConfigurationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1M", 1024**2),
        ("1m", 1024**2),
        ("512k", 512 * 1024),
        ("2G", 2 * 1024**3),
        ("2 GB", 2 * 1024**3),
        ("1.5K", 1536),
        ("100", 100),
        (100, 100),
        (0, 0),
    ],
)
def test_parse_bytes_reads_user_sizes(text: str | int, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["", "M", "1X", "-1M", -5, True, "1 M M", None])
def test_parse_bytes_rejects_nonsense_naming_the_parameter(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_nbytes"):
        parse_bytes(bad, name="max_nbytes")  # type: ignore[arg-type]


def test_format_bytes() -> None:
    assert format_bytes(10) == "10 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 1024**3) == "3.0 GiB"


@pytest.mark.parametrize(
    ("expression", "n_jobs", "expected"),
    [
        ("2 * n_jobs", 4, 8),
        ("n_jobs", 3, 3),
        ("3*n_jobs + 1", 2, 7),
        ("(n_jobs + 1) // 2", 5, 3),
        ("n_jobs / 2", 3, 1.5),
        ("-n_jobs + 10", 2, 8),
        ("all_but" if False else "7", 1, 7),
    ],
)
def test_expressions_in_n_jobs(expression: str, n_jobs: int, expected: float) -> None:
    assert evaluate_expression(expression, {"n_jobs": n_jobs}, what="pre_dispatch") == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('true')", "Call"),
        ("n_jobs ** 1000000", "BinOp"),
        ("n_workers * 2", "unknown name 'n_workers'"),
        ("2 *", "not an arithmetic expression"),
        ("'a' * 3", "is not a number"),
        ("n_jobs.real", "Attribute"),
        ("1 / 0", "division by zero"),
        ("[n_jobs]", "List"),
        ("True + 1", "is not a number"),
    ],
)
def test_expressions_refuse_everything_but_arithmetic(expression: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match="pre_dispatch") as caught:
        evaluate_expression(expression, {"n_jobs": 2}, what="pre_dispatch")
    assert reason in str(caught.value)


def test_overlong_expression_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="too long"):
        evaluate_expression("1+" * 200 + "1", {}, what="pre_dispatch")
