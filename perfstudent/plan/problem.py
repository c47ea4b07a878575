"""Latency of slots as a function of width, and the planning problem on a grid.

``T_slot(w) = slot_ms(spec, slot, w)`` (the cost of the slot's block at width
``w``, in context) and ``fixed = fixed_ms(spec)`` (the overhead term, the same
for every student of a context): exactly the model of
:meth:`perfstudent.lut.LatencyView.predict`, so a plan's prediction is what
``predict`` says of the planned student.

Discretisation: each slot's cost above its cheapest width is rounded UP to a
grid of ``q`` ms, ``units(w) = ceil((T_slot(w) - min T_slot) / q)``, and the
capacity is ``floor((budget - margin - fixed - Σ_s min T_s) / q)`` (the shift
spends the grid on the differences between widths, not on what every student
pays anyway). Every strategy (perf, pruned,
uniform) plans on this same rounded model, so on it the knapsack DP is exact
and ``perf`` can never keep less saliency than the others. Because costs only
round up, a plan that fits the grid fits the unrounded prediction; the price is
at most ``S·q`` ms of unused budget for S slots (each cost overestimated by
< q). ``q = max(resolution_ms, capacity / max_cells)`` (defaults 1 µs and
20 000 cells: for resnet34's 16 slots at most 0.08 % of the capacity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from perfstudent.plan.knapsack import FloatArray, IntArray
from perfstudent.students.widthspec import WidthSpec

#: Float slack when rounding a cost that is a multiple of the grid (avoids 7.000000001 -> 8).
_EPS = 1e-9


class LatencyModel(Protocol):
    """What the planner needs of a latency table view (``perfstudent.lut.LatencyView``)."""

    @property
    def fingerprint(self) -> Any:
        """Identity of the device/backend/settings the latencies belong to."""

    def slot_ms(self, spec: WidthSpec, slot: str, width: int) -> float:
        """Cost of ``slot``'s block at ``width`` in ``spec``'s family, ms."""

    def fixed_ms(self, spec: WidthSpec) -> float:
        """Everything that does not depend on the slot widths, ms."""


def slot_costs(base: WidthSpec, slot: str, model: LatencyModel) -> FloatArray:
    """``T_slot(w)`` for w = 1..full (index w-1), ms."""
    return np.asarray([float(model.slot_ms(base, slot, w))
                       for w in range(1, base.widths[slot] + 1)], dtype=np.float64)


@dataclass
class SlotCurve:
    """One slot: its latency staircase and the saliency kept at each width."""

    slot: str
    cost_ms: FloatArray   # index w-1 -> T_slot(w), ms
    kept: FloatArray      # index w-1 -> sum of the top-w scores
    units: IntArray       # index w-1 -> ceil(T_slot(w) / q)

    @property
    def full(self) -> int:
        return len(self.cost_ms)

    def step_top(self, width: int) -> bool:
        """True if every wider width costs strictly more on the grid (top of its step)."""
        return bool(width == self.full or self.units[width - 1] < self.units[width:].min())

    def next_step(self, width: int) -> int | None:
        """The narrowest wider width that costs more (None at full width)."""
        wider = np.nonzero(self.units[width:] > self.units[width - 1])[0]
        return None if len(wider) == 0 else int(width + wider[0] + 1)


@dataclass
class PlanningProblem:
    """Slots, fixed cost and grid for one (model, base spec, scores, capacity)."""

    base: WidthSpec
    curves: list[SlotCurve]
    fixed_ms: float
    grid_ms: float
    capacity_ms: float        # budget - margin - fixed
    capacity_units: int
    total_score: float

    def units_of(self, widths: dict[str, int]) -> int:
        return sum(int(c.units[widths[c.slot] - 1]) for c in self.curves)

    def kept_of(self, widths: dict[str, int]) -> float:
        """Fraction of the total saliency kept by ``widths``."""
        kept = sum(float(c.kept[widths[c.slot] - 1]) for c in self.curves)
        return kept / self.total_score if self.total_score > 0 else 0.0

    def fits(self, widths: dict[str, int]) -> bool:
        return self.units_of(widths) <= self.capacity_units

    def smallest_ms(self) -> float:
        """Smallest plannable latency: fixed + every slot at its cheapest width (on the grid)."""
        return self.fixed_ms + self.grid_ms * sum(int(c.units.min()) for c in self.curves)


def build_problem(model: LatencyModel, base: WidthSpec, scores: dict[str, list[float]],
                  capacity_ms: float, resolution_ms: float = 1e-3,
                  max_cells: int = 20_000) -> PlanningProblem:
    """The planning problem for a capacity of ``capacity_ms`` (budget - margin)."""
    # The overhead first: a LUT without this arch/size fails here, naming the exact profile command.
    fixed = float(model.fixed_ms(base))
    room = capacity_ms - fixed
    curves = [(slot, slot_costs(base, slot, model)) for slot in base.widths]
    # Costs are shifted so the cheapest width of each slot is 0 units: the grid then spends
    # its cells on the differences between widths, not on the common base every student pays.
    floor = sum(float(c.min()) for _, c in curves)
    grid = max(resolution_ms, (room - floor) / max_cells) if room > floor else resolution_ms
    out = []
    for slot, costs in curves:
        ranked = np.sort(np.asarray(scores[slot], dtype=np.float64))[::-1]
        units = np.ceil((costs - costs.min()) / grid - _EPS).astype(np.int64)
        out.append(SlotCurve(slot, costs, np.cumsum(ranked), units))
    cap_units = math.floor((room - floor) / grid + _EPS) if room >= floor else -1
    total = float(sum(c.kept[-1] for c in out))
    return PlanningProblem(base, out, fixed + floor, grid, room, cap_units, total)
