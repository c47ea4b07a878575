"""Pareto fronts of (latency, accuracy) points: golden values and a brute-force property."""

from __future__ import annotations

import math
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from perfstudent.fronts.pareto import front_at, pareto_front, pareto_mask, step_xy

LAT = [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 0.5, math.nan]
ACC = [50.0, 60.0, 55.0, 58.0, 70.0, 70.0, 40.0, 99.0]


def brute_force(lat: list[float], acc: list[float]) -> list[bool]:
    """O(n²) definition: kept unless some other point is <= in latency, >= in accuracy, one strictly."""
    out = []
    for i, (li, ai) in enumerate(zip(lat, acc, strict=True)):
        if math.isnan(li) or math.isnan(ai):
            out.append(False)
            continue
        dominated = any(
            lj <= li and aj >= ai and (lj < li or aj > ai)
            for j, (lj, aj) in enumerate(zip(lat, acc, strict=True)) if j != i and not math.isnan(lj + aj)
        )
        out.append(not dominated)
    return out


def test_mask_golden() -> None:
    # C (2, 55) loses to B (2, 60); D (3, 58) loses to B; E and F tie and both stay; H is nan.
    assert pareto_mask(LAT, ACC) == [True, True, False, False, True, True, True, False]


def test_front_golden_sorted_and_deduplicated() -> None:
    assert pareto_front(LAT, ACC) == [(0.5, 40.0), (1.0, 50.0), (2.0, 60.0), (4.0, 70.0)]


def test_front_at_reads_a_step_function() -> None:
    front = pareto_front(LAT, ACC)
    assert math.isnan(front_at(front, 0.4))
    assert front_at(front, 0.5) == 40.0
    assert front_at(front, 2.5) == 60.0
    assert front_at(front, 3.99) == 60.0
    assert front_at(front, 100.0) == 70.0


def test_step_xy_holds_the_last_value_to_the_edge() -> None:
    front = [(1.0, 50.0), (2.0, 60.0)]
    assert step_xy(front, 5.0) == ([1.0, 2.0, 5.0], [50.0, 60.0, 60.0])
    assert step_xy(front) == ([1.0, 2.0], [50.0, 60.0])
    assert step_xy([], 3.0) == ([], [])


def test_mismatched_lengths_are_rejected() -> None:
    try:
        pareto_mask([1.0], [1.0, 2.0])
    except ValueError as exc:
        assert "same length" in str(exc)
    else:
        raise AssertionError("no error for mismatched lengths")


small = st.floats(min_value=0, max_value=5, allow_nan=False).map(lambda x: round(x, 1))


@given(st.lists(st.tuples(small, small), max_size=25))
def test_mask_matches_the_definition(points: list[tuple[float, float]]) -> None:
    lat = [p[0] for p in points]
    acc = [p[1] for p in points]
    assert pareto_mask(lat, acc) == brute_force(lat, acc)
    front = pareto_front(lat, acc)
    assert all(a < b for (_, a), (_, b) in pairwise(front))  # accuracy rises along it
