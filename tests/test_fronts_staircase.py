"""A slot's latency staircase: T_slot(w) from the view's slot cost; plan widths on it."""

from __future__ import annotations

import math

from perfstudent.fronts.staircase import pick_slot, plan_choices, slot_staircase
from perfstudent.students import WidthSpec, full_spec


def blocked_cost(spec: WidthSpec, slot: str, width: int) -> float:
    """A block whose two convs (16 -> w -> 16) cost ceil(channels / 8) in and out each."""
    return 2.0 * math.ceil(width / 8) + 4.0


def test_staircase_golden() -> None:
    base = full_spec("resnet20", 8, 1, 10)
    stair = slot_staircase(base, "layer1.0", blocked_cost)
    assert stair.widths == tuple(range(1, 17))
    assert stair.ms == tuple(2.0 * math.ceil(w / 8) + 4.0 for w in range(1, 17))
    assert stair.steps == 1


def test_plan_choices_and_slot_pick() -> None:
    base = full_spec("resnet20", 8, 1, 10)
    perf = {"strategy": "perf", "budget_ms": 2.0,
            "spec": base.with_widths({"layer3.2": 48, "layer2.0": 8}).to_dict()}
    pruned = {"strategy": "pruned", "budget_ms": 2.0,
              "spec": base.with_widths({"layer3.2": 13, "layer2.0": 8}).to_dict()}
    perf3 = {**perf, "budget_ms": 3.0}
    plans = [("perf", perf), ("perf", perf), ("pruned", pruned), ("perf", perf3)]
    assert pick_slot(base, plans) == "layer3.2"
    assert plan_choices(plans, "layer3.2") == [("perf", "2, 3 ms", 48), ("pruned", "2 ms", 13)]
