"""The conformal planning margin (perfstudent.plan.planner), checked against its definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfstudent.errors import InputError
from perfstudent.plan.planner import conformal_margin, plan_margin


def test_golden_values() -> None:
    residuals = [0.01 * i for i in range(19)]  # 0 .. 18%: k = ceil(20 * 0.95) = 19 -> +18%
    margin, note = conformal_margin(residuals, 10.0)
    assert margin == pytest.approx(10.0 * 0.18 / 1.18)
    assert "from 19 validation residuals" in note
    assert conformal_margin([-0.1, -0.05] * 20, 10.0)[0] == 0.0  # the LUT over-predicts: no margin
    margin, note = conformal_margin([0.02, 0.04], 10.0)  # k = 3 > n: the largest, said plainly
    assert margin == pytest.approx(10.0 * 0.04 / 1.04) and "too few" in note
    assert conformal_margin([], 10.0) == (0.0, pytest.approx(conformal_margin([], 10.0)[1]))
    assert "no validation residuals" in conformal_margin([float("nan")], 10.0)[1]
    with pytest.raises(InputError):
        conformal_margin(residuals, 10.0, coverage=1.0)


@given(st.lists(st.floats(-0.5, 0.5), min_size=20, max_size=200), st.floats(0.1, 100.0))
def test_a_plan_at_the_margin_meets_the_budget_for_the_covered_share(residuals: list[float],
                                                                    budget: float) -> None:
    """Planning to ``budget - margin`` and applying each stored residual: at least 95% of the
    n residuals (the conformal guarantee's in-sample form) keep the measurement in budget."""
    margin, _ = conformal_margin(residuals, budget)
    predicted = budget - margin
    measured = predicted * (1 + np.asarray(residuals))
    k = math.ceil((len(residuals) + 1) * 0.95)
    assert np.sum(measured <= budget * (1 + 1e-9)) >= min(k, len(residuals))


def test_plan_margin_takes_the_planners_own_residuals_when_they_are_worse() -> None:
    """The winner's curse: a strategy's own plans measured further above prediction than the
    random students; their bound governs, and the note says whose it is."""
    randoms = [0.003 * i - 0.1 for i in range(39)]  # -10% .. +1.4%
    kinds = ["uniform"] * 39 + ["plan-perf"] * 3 + ["plan-uniform"] * 3
    residuals = [*randoms, 0.05, 0.12, 0.09, -0.02, 0.0, 0.01]
    everyone, _ = conformal_margin(residuals, 10.0)  # n = 45, k = 44: the second largest, +9%
    assert everyone == pytest.approx(10.0 * 0.09 / 1.09)
    margin, note = plan_margin(residuals, kinds, "perf", 10.0)
    assert margin == pytest.approx(10.0 * 0.12 / 1.12)
    assert "perf's own plans" in note and "too few" in note and "lean optimistic" in note
    # uniform's own plans are no worse than the rest: the bound over every residual stands
    assert plan_margin(residuals, kinds, "uniform", 10.0) == conformal_margin(residuals, 10.0)
    # a strategy that was not validated falls back to every planner output (+12% here too)
    margin, note = plan_margin(residuals, kinds, "pruned", 10.0)
    assert margin == pytest.approx(10.0 * 0.12 / 1.12) and "the planner's outputs" in note
    # no kinds stored (an older validation), or none of them a plan: the plain bound
    assert plan_margin(residuals, None, "perf", 10.0) == conformal_margin(residuals, 10.0)
    assert plan_margin(randoms, ["uniform"] * 39, "perf", 10.0) == conformal_margin(randoms, 10.0)


@given(st.lists(st.tuples(st.floats(-0.5, 0.5), st.sampled_from(["uniform", "plan-perf", "plan-pruned"])),
                min_size=1, max_size=60),
       st.sampled_from(["perf", "pruned", "uniform", "torch-pruning"]))
def test_plan_margin_is_never_below_the_plain_bound(pairs: list[tuple[float, str]], strategy: str) -> None:
    residuals, kinds = [r for r, _ in pairs], [k for _, k in pairs]
    margin, _ = plan_margin(residuals, kinds, strategy, 5.0)
    assert margin >= conformal_margin(residuals, 5.0)[0]
    own = [r for r, k in pairs if k == f"plan-{strategy}"] or [r for r, k in pairs if k.startswith("plan-")]
    if own:
        assert margin >= conformal_margin(own, 5.0)[0]
    assert 0 <= margin < 5.0
