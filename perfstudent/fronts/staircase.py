"""A slot's latency staircase from the LUT (docs/design.md, formulas).

``T_slot(w) = LatencyView.slot_ms(base, slot, w)`` (the cost of the slot's block
at width ``w`` in context) for ``w = 1..full``. Conv kernels are vectorised over channel
blocks, so ``T_slot`` is a staircase: removing channels inside a step buys
nothing, which is what the performance-enhanced planner exploits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from perfstudent.io import read_json
from perfstudent.students import WidthSpec, get_family


@dataclass(frozen=True)
class Staircase:
    """Predicted latency (ms) of one slot's layers at each width 1..full."""

    slot: str
    widths: tuple[int, ...]
    ms: tuple[float, ...]

    def at(self, width: int) -> float:
        return self.ms[self.widths.index(width)]

    @property
    def steps(self) -> int:
        """How many times the latency changes between neighbouring widths (by > 1%)."""
        return sum(1 for a, b in pairwise(self.ms) if abs(b - a) > 0.01 * max(a, b, 1e-12))


def slot_staircase(base: WidthSpec, slot: str,
                   slot_ms: Callable[[WidthSpec, str, int], float]) -> Staircase:
    """``T_slot(w)`` for ``w = 1..full`` of ``slot`` in ``base``'s family."""
    full = get_family(base.family).full_widths()[slot]
    widths = tuple(range(1, full + 1))
    ms = tuple(float(slot_ms(base, slot, w)) for w in widths)
    return Staircase(slot, widths, ms)


def plan_choices(plans: Sequence[tuple[str, dict[str, Any]]], slot: str) -> list[tuple[str, str, int]]:
    """(series, budgets label, width of ``slot``) per series and width, by series then width.

    Plans of one series that chose the same width share a point (their budgets
    joined in the label, e.g. ``3.01, 3.52 ms``).
    """
    budgets: dict[tuple[str, int], list[float]] = {}
    for series, plan in plans:
        width = WidthSpec.from_dict(plan).widths[slot]
        budget = float(plan.get("budget_ms") or 0.0)
        group = budgets.setdefault((series, width), [])
        if budget not in group:
            group.append(budget)
    out = []
    for (series, width), values in sorted(budgets.items()):
        known = sorted(b for b in values if b)
        label = f"{', '.join(f'{b:.3g}' for b in known)} ms" if known else series
        out.append((series, label, width))
    return out


def pick_slot(base: WidthSpec, plans: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """The slot on which the plans disagree most (most distinct widths), else the last one."""
    slots = list(base.widths)
    if not plans:
        return slots[-1]

    def spread(slot: str) -> tuple[int, int]:
        widths = {WidthSpec.from_dict(plan).widths[slot] for _, plan in plans}
        return len(widths), slots.index(slot)

    return max(slots, key=spread)


def plans_of_runs(run_paths: Sequence[Path], series: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """(series, plan dict) for every run that carries a ``plan.json``."""

    out = []
    for path, name in zip(run_paths, series, strict=True):
        plan_path = Path(path) / "plan.json"
        if plan_path.exists():
            out.append((name, read_json(plan_path, "plan")))
    return out
