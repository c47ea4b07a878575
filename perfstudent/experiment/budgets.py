"""Budgets of an experiment: absolute durations or fractions of the full network.

``"3ms"`` / ``"2500us"`` / ``"0.004s"`` are absolute (ms = the number times the
unit). A plain number ``f`` in ``(0, 1]`` is relative:
``budget_ms = f · T_full`` with ``T_full`` the LUT-predicted latency of the
full-width network of the experiment's family on the experiment's device.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from perfstudent.durations import parse_duration_ms
from perfstudent.errors import InputError


@dataclass(frozen=True)
class Budget:
    """One budget: how it was written, a file-name label, and its value in ms."""

    given: str | float
    label: str
    ms: float


def budget_label(given: str | float) -> str:
    """A file-name-safe label: ``0.5`` -> ``x0.50``, ``"3ms"`` -> ``3ms``."""
    if isinstance(given, str):
        return re.sub(r"[^A-Za-z0-9.]+", "", given.replace("µ", "u").replace("μ", "u")) or "budget"
    return f"x{given:.2f}" if round(given, 2) == given else f"x{given:.4g}"


def resolve_budgets(given: list[Any], full_ms: float) -> list[Budget]:
    """Budgets in ms, in the order given (fractions scaled by ``full_ms``)."""
    out = []
    for item in given:
        ms = parse_duration_ms(item, "budget") if isinstance(item, str) else float(item) * full_ms
        out.append(Budget(item, budget_label(item), ms))
    labels = [b.label for b in out]
    if len(set(labels)) != len(labels):
        raise InputError(f"budgets {given} give duplicate labels {labels}")
    return out
