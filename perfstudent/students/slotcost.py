"""Latency of slots as a function of width, and the planning problem on a grid.

``T_slot(w) = Σ layer_ms`` over ``Family.slot_layers(spec, slot, w)``;
``fixed = Σ layer_ms`` over the other layers ``+ overhead_ms(full spec)``. The
overhead is taken at the full-width spec: it is assumed not to grow when slots
get narrower (true for a per-inference constant and for non-conv ops that
scale with channels), so this is conservative.

Discretisation: slot costs are rounded UP to a grid of ``q`` ms,
``units(w) = ceil(T_slot(w) / q)``, and the capacity is
``floor((budget - margin - fixed) / q)``. Every strategy (perf, pruned,
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

from perfstudent.convshape import ConvShape
from perfstudent.students.knapsack import FloatArray, IntArray
from perfstudent.students.registry import Family, get_family
from perfstudent.students.widthspec import WidthSpec

#: Float slack when rounding a cost that is a multiple of the grid (avoids 7.000000001 -> 8).
_EPS = 1e-9


class LatencyModel(Protocol):
    """What the planner needs of a latency table view (``perfstudent.lut.LatencyView``)."""

    @property
    def fingerprint(self) -> Any:
        """Identity of the device/backend/settings the latencies belong to."""

    def layer_ms(self, shape: ConvShape) -> float:
        """Latency of one layer, ms."""

    def overhead_ms(self, spec: WidthSpec) -> float:
        """Fixed per-inference and non-conv cost of ``spec``, ms."""


class CachedModel:
    """Memoises ``layer_ms`` by shape (identical slots share shapes)."""

    def __init__(self, model: LatencyModel) -> None:
        self.model = model
        self._cache: dict[ConvShape, float] = {}

    def layer_ms(self, shape: ConvShape) -> float:
        if shape not in self._cache:
            self._cache[shape] = float(self.model.layer_ms(shape))
        return self._cache[shape]


def _width_fields(full: list[ConvShape], one: list[ConvShape], width: int) -> list[tuple[str, ...]] | None:
    """Per layer, the ConvShape fields equal to the slot width (None if not that simple)."""
    if len(full) != len(one):
        return None
    result = []
    for a, b in zip(full, one, strict=True):
        diff = [f for f in ("cin", "cout") if getattr(a, f) != getattr(b, f)]
        if any(getattr(a, f) != width or getattr(b, f) != 1 for f in diff):
            return None
        if a.replace(**{f: 1 for f in diff}) != b:
            return None
        result.append(tuple(diff))
    return result


def slot_costs(family: Family, base: WidthSpec, slot: str, model: CachedModel) -> FloatArray:
    """``T_slot(w)`` for w = 1..full (index w-1), ms."""
    full = base.widths[slot]
    at_full = [layer.shape for layer in family.slot_layers(base, slot, full)]
    at_one = [layer.shape for layer in family.slot_layers(base, slot, 1)]
    fields = _width_fields(at_full, at_one, full)
    costs = np.empty(full)
    for w in range(1, full + 1):
        if fields is None:  # a family whose slot layers are not width-linear: ask it
            shapes = [layer.shape for layer in family.slot_layers(base, slot, w)]
        else:
            shapes = [s.replace(**{f: w for f in fs}) for s, fs in zip(at_full, fields, strict=True)]
        costs[w - 1] = sum(model.layer_ms(s) for s in shapes)
    return costs


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
    family = get_family(base.family)
    cached = CachedModel(model)
    # The overhead first: a LUT without this arch/size fails here, naming the exact profile command.
    fixed = float(model.overhead_ms(base))
    fixed += sum(cached.layer_ms(layer.shape) for layer in family.layers(base) if layer.slot is None)
    room = capacity_ms - fixed
    grid = max(resolution_ms, room / max_cells) if room > 0 else resolution_ms
    curves = []
    for slot in base.widths:
        costs = slot_costs(family, base, slot, cached)
        ranked = np.sort(np.asarray(scores[slot], dtype=np.float64))[::-1]
        units = np.ceil(costs / grid - _EPS).astype(np.int64)
        curves.append(SlotCurve(slot, costs, np.cumsum(ranked), units))
    cap_units = math.floor(room / grid + _EPS) if room >= 0 else -1
    total = float(sum(c.kept[-1] for c in curves))
    return PlanningProblem(base, curves, fixed, grid, room, cap_units, total)
