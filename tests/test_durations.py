"""Duration parsing for budgets and margins (property-tested)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfstudent.durations import format_ms, parse_duration_ms
from perfstudent.errors import InputError

positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize(("text", "ms"), [
    ("30ms", 30.0), ("0.03s", 30.0), ("1500us", 1.5), ("1500µs", 1.5), ("2e-2s", 20.0),
    (" 7 MS ", 7.0), (".5ms", 0.5), ("3.s", 3000.0),
])
def test_examples(text: str, ms: float) -> None:
    assert parse_duration_ms(text) == pytest.approx(ms)


@given(positive, st.sampled_from([("ms", 1.0), ("s", 1000.0), ("us", 1e-3), ("µs", 1e-3)]))
def test_number_with_unit_roundtrips(value: float, unit: tuple[str, float]) -> None:
    text = f"{value!r}{unit[0]}"
    assert parse_duration_ms(text) == pytest.approx(value * unit[1], rel=1e-12)


@given(positive)
def test_units_agree(ms: float) -> None:
    a = parse_duration_ms(f"{ms!r}ms")
    b = parse_duration_ms(f"{ms / 1000!r}s")
    c = parse_duration_ms(f"{ms * 1000!r}us")
    assert math.isclose(a, b, rel_tol=1e-9) and math.isclose(a, c, rel_tol=1e-9)


@given(st.text(max_size=12))
def test_anything_either_parses_positive_or_raises_input_error(text: str) -> None:
    try:
        value = parse_duration_ms(text)
    except InputError as exc:
        assert str(exc)
    else:
        assert value > 0 and math.isfinite(value)


@pytest.mark.parametrize(("text", "message"), [
    ("30", "no unit"), ("30 m", "unknown unit"), ("fast", "not a duration"), ("0ms", "positive"),
    ("-3ms", "positive"), ("1e999s", "finite"), ("", "not a duration"), ("3ms4", "not a duration"),
])
def test_bad_durations(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_duration_ms(text)


def test_zero_allowed_for_margins() -> None:
    assert parse_duration_ms("0", allow_zero=True) == 0.0
    assert parse_duration_ms("0ms", allow_zero=True) == 0.0
    with pytest.raises(InputError, match="no unit"):
        parse_duration_ms("2", allow_zero=True)
    with pytest.raises(InputError, match="non-negative"):
        parse_duration_ms("-1ms", allow_zero=True)


def test_format_ms() -> None:
    assert format_ms(12.345) == "12.35 ms" and format_ms(0.85) == "850 us"
    assert format_ms(1200.0) == "1.2 s"
