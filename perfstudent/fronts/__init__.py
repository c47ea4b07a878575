"""Accuracy-latency fronts: collect runs, measure them, Pareto fronts, figures (docs/design.md, layers)."""

from __future__ import annotations

from perfstudent.fronts.collect import RunPoint, collect_points, latency_key, measure_together
from perfstudent.fronts.front import FrontResult, make_front
from perfstudent.fronts.pareto import front_at, pareto_front, pareto_mask, step_xy
from perfstudent.fronts.table import aggregate, compare_at_budgets, fronts, paired_differences

__all__ = [
    "FrontResult",
    "RunPoint",
    "aggregate",
    "collect_points",
    "compare_at_budgets",
    "front_at",
    "fronts",
    "latency_key",
    "make_front",
    "measure_together",
    "paired_differences",
    "pareto_front",
    "pareto_mask",
    "step_xy",
]
