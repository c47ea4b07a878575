"""A slot's latency staircase: T_slot(w) summed over the slot's layers; plan widths on it."""

from __future__ import annotations

import math

from perfstudent.convshape import ConvShape
from perfstudent.fronts.staircase import pick_slot, plan_choices, slot_staircase
from perfstudent.students import full_spec


def blocked_cost(shape: ConvShape) -> float:
    """A cost that only moves every 8 channels in and out (a vectorised kernel's staircase)."""
    return float(math.ceil(shape.cin / 8) + math.ceil(shape.cout / 8))


def test_staircase_golden() -> None:
    base = full_spec("resnet20", 8, 1, 10)
    stair = slot_staircase(base, "layer1.0", blocked_cost)
    # conv1: 16 -> w, conv2: w -> 16; each costs ceil(w/8) + ceil(16/8) = ceil(w/8) + 2.
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
