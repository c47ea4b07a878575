"""Durations given on the command line and in configs (latency budgets, margins): one parser.

A duration is a positive finite number followed by a unit: ``30ms``,
``0.03s``, ``1500us`` (``µs`` also accepted), ``2e-2s``; whitespace between
number and unit is allowed, units are case-insensitive. A plain number with no
unit is refused: ``30`` could mean 30 ms or 30 s, and guessing wrong makes a
plan silently useless.
"""

from __future__ import annotations

import math
import re

from perfstudent.errors import InputError

#: Unit -> milliseconds per unit.
UNITS_MS: dict[str, float] = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "µs": 1e-3, "μs": 1e-3}

_DURATION = re.compile(
    r"\s*(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>[a-zA-Zµμ]*)\s*"
)


def parse_duration_ms(text: str, what: str = "duration", allow_zero: bool = False) -> float:
    """``text`` (e.g. ``"30ms"``, ``"0.03s"``, ``"1500us"``) in milliseconds.

    Raises :class:`InputError` for a missing or unknown unit, a malformed
    number, or a value that is not positive and finite. With ``allow_zero``,
    zero is accepted too, with or without a unit (``0`` is unambiguous).
    """
    match = _DURATION.fullmatch(text)
    if allow_zero and match is not None and float(match["num"]) == 0 and not match["unit"]:
        return 0.0
    if match is None:
        raise InputError(f"{what} {text!r} is not a duration; write e.g. 30ms, 0.03s or 1500us")
    unit = match["unit"].lower()
    if not unit:
        raise InputError(f"{what} {text!r} has no unit; write e.g. {match['num']}ms or {match['num']}s")
    if unit not in UNITS_MS:
        raise InputError(f"{what} {text!r} has unknown unit {match['unit']!r}; use s, ms or us")
    value = float(match["num"]) * UNITS_MS[unit]
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{what} {text!r} must be {'non-negative' if allow_zero else 'positive'} "
                         "and finite")
    return value


def format_ms(ms: float) -> str:
    """A short human form of ``ms`` milliseconds (``12.34 ms``, ``850 us``, ``1.20 s``)."""
    if ms >= 1000:
        return f"{ms / 1000:.3g} s"
    if ms >= 1:
        return f"{ms:.4g} ms"
    return f"{ms * 1000:.4g} us"
