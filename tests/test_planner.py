"""The planner on synthetic staircase latency models: exactness, feasibility, baselines."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfstudent.errors import InputError
from perfstudent.plan.planner import InfeasibleBudget, Plan, make_plan, plan_summary
from perfstudent.plan.problem import build_problem
from perfstudent.plan.saliency import Saliency
from perfstudent.plan.strategies import plan_perf, uniform_widths
from perfstudent.plan.synthetic import StaircaseModel
from perfstudent.students import WidthSpec, full_spec, get_family

MODEL = StaircaseModel(noise=0.05, seed=3)


def random_saliency(spec: WidthSpec, seed: int) -> Saliency:
    rng = np.random.default_rng(seed)
    slots = {s: (rng.gamma(0.7, size=w) * rng.uniform(0.1, 10)).tolist() for s, w in spec.widths.items()}
    return Saliency(spec.family, spec.input_size, spec.in_channels, spec.num_classes, slots)


def full_ms(spec: WidthSpec) -> float:
    return make_plan("perf", 1e9, MODEL, spec).predicted_ms


def test_huge_budget_keeps_everything() -> None:
    base = full_spec("resnet20")
    for strategy in ("perf", "uniform"):
        plan = make_plan(strategy, 1e6, MODEL, base)
        assert plan.spec == base and plan.saliency_kept == pytest.approx(1.0)
    assert make_plan("uniform", 1e6, MODEL, base).multiplier == 1.0


def test_prediction_is_sum_of_layers_and_fits() -> None:
    base = full_spec("resnet20")
    budget = 0.8 * full_ms(base)
    plan = make_plan("perf", budget, MODEL, base, margin_ms=0.01)
    layers = get_family("resnet20").layers(plan.spec)
    expected = sum(MODEL.layer_ms(layer.shape) for layer in layers) + MODEL.fixed_overhead_ms
    assert plan.predicted_ms == pytest.approx(expected)
    assert plan.predicted_ms <= budget - 0.01
    assert [row.slot for row in plan.per_slot] == list(base.widths)
    assert plan.overhead_ms == pytest.approx(MODEL.fixed_ms(plan.spec))
    assert plan.device == "synthetic" and plan.backend == "staircase" and plan.threads == 1


def test_perf_without_saliency_is_widest_that_fits() -> None:
    base = full_spec("resnet20")
    budget = 0.85 * full_ms(base)
    plan = make_plan("perf", budget, MODEL, base)
    problem = build_problem(MODEL, base, {s: [1.0] * w for s, w in base.widths.items()}, budget)
    # brute force over layer1's three slots, the others held at the plan's widths
    subset = problem.curves[:3]
    rest = sum(int(c.units[plan.spec.widths[c.slot] - 1]) for c in problem.curves[3:])
    best = max(sum(ws) for ws in itertools.product(range(1, 17), repeat=3)
               if sum(int(c.units[w - 1]) for c, w in zip(subset, ws, strict=True))
               <= problem.capacity_units - rest)
    assert sum(plan.spec.widths[c.slot] for c in subset) == best


@pytest.mark.parametrize("seed", range(4))
def test_perf_equals_brute_force_on_a_small_problem(seed: int) -> None:
    base = full_spec("resnet20", 8)
    sal = random_saliency(base, seed)
    problem = build_problem(replace(MODEL, seed=seed), base, sal.slots, 0.6 * full_ms(base))
    small = replace(problem, curves=problem.curves[:3])  # layer1's slots: 16^3 combinations
    small.capacity_units = int(sum(c.units[7] for c in small.curves))
    widths = plan_perf(small)
    assert widths is not None
    best = max(sum(float(c.kept[w - 1]) for c, w in zip(small.curves, ws, strict=True))
               for ws in itertools.product(range(1, 17), repeat=3)
               if sum(int(c.units[w - 1]) for c, w in zip(small.curves, ws, strict=True))
               <= small.capacity_units)
    got = sum(float(c.kept[widths[c.slot] - 1]) for c in small.curves)
    assert got == pytest.approx(best, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(fraction=st.floats(0.45, 1.05), seed=st.integers(0, 10_000),
       arch=st.sampled_from(["resnet20", "densenet-bc-40"]))
def test_perf_keeps_at_least_as_much_as_baselines(fraction: float, seed: int, arch: str) -> None:
    base = full_spec(arch)
    sal = random_saliency(base, seed)
    model = replace(MODEL, seed=seed)
    budget = fraction * make_plan("perf", 1e9, model, base).predicted_ms
    plans = {}
    for strategy in ("perf", "pruned", "uniform"):
        try:
            plans[strategy] = make_plan(strategy, budget, model, base, sal)
        except InfeasibleBudget:
            continue
    if "perf" not in plans:
        assert not plans  # if perf finds nothing, no other strategy can
        return
    for plan in plans.values():
        assert plan.predicted_ms <= budget + 1e-9
        assert plan.saliency_kept == pytest.approx(sal.kept(plan.spec.widths))
    for other in ("pruned", "uniform"):
        if other in plans:
            assert plans["perf"].saliency_kept >= plans[other].saliency_kept - 1e-12


def test_infeasible_budget_reports_smallest_latency() -> None:
    base = full_spec("resnet20")
    with pytest.raises(InfeasibleBudget) as info:
        make_plan("perf", 0.05, MODEL, base)
    smallest = info.value.smallest_ms
    assert "smallest achievable" in str(info.value) and smallest > 0.05
    plan = make_plan("perf", smallest * 1.0001, MODEL, base)
    assert plan.predicted_ms <= smallest * 1.0001


def test_pruned_removes_lowest_scores_first() -> None:
    base = full_spec("resnet20")
    sal = random_saliency(base, 7)
    plan = make_plan("pruned", 0.75 * full_ms(base), MODEL, base, sal)
    removed = [x for s in base.widths for x in sal.ranked(s)[plan.spec.widths[s]:]]
    kept = [x for s in base.widths for x in sal.ranked(s)[:plan.spec.widths[s]]
            if plan.spec.widths[s] > 1]
    assert removed and max(removed) <= min(kept)


def test_uniform_widths_round_and_floor_at_one() -> None:
    base = full_spec("resnet20")
    assert set(uniform_widths(base, 0.5).values()) == {8, 16, 32}
    assert set(uniform_widths(base, 0.001).values()) == {1}
    plan = make_plan("uniform", 0.6 * full_ms(base), MODEL, base)
    assert plan.multiplier is not None and plan.spec.widths == uniform_widths(base, plan.multiplier)


def test_bad_inputs() -> None:
    base = full_spec("resnet20")
    with pytest.raises(InputError, match="needs a saliency"):
        make_plan("pruned", 10.0, MODEL, base)
    with pytest.raises(InputError, match="unknown strategy"):
        make_plan("greedy", 10.0, MODEL, base)
    with pytest.raises(InputError, match="margin"):
        make_plan("perf", 10.0, MODEL, base, margin_ms=10.0)
    other = random_saliency(full_spec("resnet56"), 0)
    with pytest.raises(InputError, match="for resnet56, not resnet20"):
        make_plan("perf", 10.0, MODEL, base, other)
    wrong_size = random_saliency(full_spec("resnet20", 64), 0)
    with pytest.raises(InputError, match="input size 64"):
        make_plan("perf", 10.0, MODEL, base, wrong_size)


def test_plan_json_roundtrip_and_widthspec(tmp_path: Path) -> None:
    base = full_spec("resnet20")
    plan = make_plan("perf", 0.8 * full_ms(base), MODEL, base, random_saliency(base, 1))
    path = tmp_path / "plan.json"
    plan.save(path)
    data = json.loads(path.read_text())
    assert data["schema"] == "perfstudent.plan/1" and data["strategy"] == "perf"
    assert WidthSpec.from_dict(data) == plan.spec
    again = Plan.load(path)
    assert again.spec == plan.spec and again.predicted_ms == plan.predicted_ms
    assert again.slots == plan.slots
    assert "step top" in plan_summary(plan) or "mid-step" in plan_summary(plan)
    with pytest.raises(InputError, match="not a plan"):
        Plan.from_dict({"schema": "x"})
