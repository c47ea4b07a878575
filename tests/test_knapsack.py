"""The multiple-choice knapsack DP and the Pareto (step-top) filter against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from perfstudent.plan.knapsack import pareto_candidates, solve_mckp


def brute_force(units: list[np.ndarray], values: list[np.ndarray], cap: int) -> float | None:
    best = None
    for combo in itertools.product(*(range(len(u)) for u in units)):
        cost = sum(int(u[k]) for u, k in zip(units, combo, strict=True))
        if cost <= cap:
            value = sum(float(v[k]) for v, k in zip(values, combo, strict=True))
            best = value if best is None else max(best, value)
    return best


@pytest.mark.parametrize("seed", range(12))
def test_dp_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 5))
    units = [rng.integers(0, 30, size=int(rng.integers(1, 7))) for _ in range(groups)]
    values = [rng.random(len(u)) * 10 for u in units]
    cap = int(rng.integers(0, 30 * groups))
    expected = brute_force(units, values, cap)
    chosen = solve_mckp(units, values, cap)
    if expected is None:
        assert chosen is None
        return
    assert chosen is not None
    assert sum(int(u[k]) for u, k in zip(units, chosen, strict=True)) <= cap
    got = sum(float(v[k]) for v, k in zip(values, chosen, strict=True))
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_pareto_filter_loses_nothing(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    units = [rng.integers(0, 20, size=8) for _ in range(3)]
    values = [np.cumsum(rng.random(8)) for _ in range(3)]  # kept saliency grows with width
    cap = int(rng.integers(5, 60))
    keep = [pareto_candidates(u, v) for u, v in zip(units, values, strict=True)]
    filtered = brute_force([u[k] for u, k in zip(units, keep, strict=True)],
                           [v[k] for v, k in zip(values, keep, strict=True)], cap)
    assert filtered == brute_force(units, values, cap)


def test_pareto_keeps_step_tops() -> None:
    # widths 1..8, a staircase of two steps: 1-4 cost 3, 5-8 cost 7
    units = np.array([3, 3, 3, 3, 7, 7, 7, 7])
    values = np.arange(1.0, 9.0)
    assert (pareto_candidates(units, values) + 1).tolist() == [4, 8]
    # zero scores: a wider width with the same value and a higher cost is dominated
    assert pareto_candidates(np.array([1, 2, 3]), np.array([1.0, 1.0, 2.0])).tolist() == [0, 2]


def test_min_cost_among_optima_and_infeasible() -> None:
    units = [np.array([1, 5]), np.array([1, 5])]
    values = [np.array([1.0, 1.0]), np.array([2.0, 2.0])]
    assert solve_mckp(units, values, 20) == [0, 0]  # same value, cheapest
    assert solve_mckp(units, values, 1) is None
    assert solve_mckp(units, values, -1) is None
