"""The conformal planning margin (perfstudent.plan.planner), checked against its definition."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfstudent.errors import InputError
from perfstudent.plan.planner import conformal_margin


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
