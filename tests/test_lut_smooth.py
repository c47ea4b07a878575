"""Isotonic smoothing of the rows (perfstudent.lut.smooth) and the view that reads them smoothed."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfstudent.blockshape import Chain
from perfstudent.lut import LatencyView, context_key
from perfstudent.lut.smooth import isotonic
from perfstudent.students import full_spec, get_family
from tests.lut_helpers import block, fingerprint, lone_rows, measurement

values_ = st.lists(st.floats(-100.0, 100.0, allow_nan=False), max_size=12)


def min_max(values: list[float]) -> list[float]:
    """The isotonic fit by the min-max formula: ``max_{j<=i} min_{k>=i} mean(y_j..y_k)``, O(n^3)."""
    n = len(values)
    return [max(min(sum(values[j:k + 1]) / (k + 1 - j) for k in range(i, n)) for j in range(i + 1))
            for i in range(n)]


@given(values_)
def test_pool_adjacent_violators_equals_the_min_max_formula(values: list[float]) -> None:
    assert isotonic(values) == pytest.approx(min_max(values), abs=1e-9)


@given(values_)
def test_the_fit_is_non_decreasing_keeps_the_sum_and_is_a_fixed_point(values: list[float]) -> None:
    fit = isotonic(values)
    assert len(fit) == len(values)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(fit))
    assert sum(fit) == pytest.approx(sum(values), abs=1e-6)
    assert isotonic(fit) == pytest.approx(fit)


def test_golden_values() -> None:
    assert isotonic([]) == []
    assert isotonic([1.0, 1.0, 2.0, 2.0, 3.0]) == [1.0, 1.0, 2.0, 2.0, 3.0]  # a staircase stays
    assert isotonic([1.0, 3.0, 2.0, 4.0]) == [1.0, 2.5, 2.5, 4.0]  # a dip pools with its neighbour
    assert isotonic([3.0, 2.0, 1.0]) == [2.0, 2.0, 2.0]


def cost(view: LatencyView, width: int) -> float:
    return view.chain_ms(Chain(block(width, full=32)))


def test_the_view_smooths_each_class_apart_and_keeps_real_steps() -> None:
    """Multiples of 4 cost 1 then 2 ms (a real step), the others 5 ms with a dip at 9 (noise):
    the dip is pooled within its class, the step and the classes' gap stay."""
    measured = {4: 1.0, 8: 1.0, 12: 2.0, 16: 2.0, 5: 5.0, 9: 4.0, 13: 5.0}
    rows = lone_rows(measured, full=32)
    raw = LatencyView(fingerprint(width_alignment=4), rows, smooth=False)
    smooth = LatencyView(fingerprint(width_alignment=4), rows)
    assert [cost(raw, w) for w in sorted(measured)] == [measured[w] for w in sorted(measured)]
    assert [cost(smooth, w) for w in (4, 8, 12, 16)] == [1.0, 1.0, 2.0, 2.0]
    assert [cost(smooth, w) for w in (5, 9, 13)] == pytest.approx([4.5, 4.5, 5.0])
    assert cost(smooth, 7) == pytest.approx(4.5)  # interpolated between smoothed rows
    assert cost(smooth, 11) == pytest.approx(4.75)  # between the smoothed 9 and 13


def test_the_overhead_term_is_fitted_on_the_rows_as_the_view_reads_them() -> None:
    """Every slot of resnet20 @8: anchor 1 ms, chain 10 + 0.01 w ms, so a row is 1 + 0.01 (w - full);
    layer1.0's row at 8 dips 0.03 below that (noise). Three calibration networks (all full;
    layer1.0 at 8; layer1.0 at 12) measured exactly 2 + 1.5 x their smoothed row sums: the
    smoothed view recovers (2, 1.5); the raw view fits its own rows, not the stored (0.25, 1.5)."""
    spec = full_spec("resnet20", 8)
    chains = get_family("resnet20").slot_chains(spec)
    rows = {}
    for slot, chain in chains.items():
        rows[Chain(chain.block)] = measurement(1.0)  # the anchor
        for w in range(1, chain.block.full + 1):
            rows[chain.at(w)] = measurement(10.0 + 0.01 * w - (0.03 if (slot, w) == ("layer1.0", 8) else 0))
    full = dict(spec.widths)
    sums = {"full": 9.0, "dip": 8.0 + 0.90, "wide": 8.0 + 0.96}  # smoothed: 7 and 8 pool to 0.90
    widths = {"full": full, "dip": full | {"layer1.0": 8}, "wide": full | {"layer1.0": 12}}
    points = [{"widths": widths[k], "net_ms": 2.0 + 1.5 * sums[k]} for k in sums]
    overheads = {context_key(spec): (0.25, {"points": points, "scale": 1.5})}
    raw = LatencyView(fingerprint(), rows, overheads, smooth=False)
    smooth = LatencyView(fingerprint(), rows, overheads)
    dip, below = chains["layer1.0"].at(8), chains["layer1.0"].at(7)
    assert (raw.chain_ms(below), raw.chain_ms(dip)) == pytest.approx((0.91, 0.89))  # as measured
    assert (smooth.chain_ms(below), smooth.chain_ms(dip)) == pytest.approx((0.90, 0.90))  # pooled
    assert (smooth.fixed_ms(spec), smooth.scale(spec)) == pytest.approx((2.0, 1.5))
    assert smooth.predict(spec.with_widths(widths["dip"])).total_ms == pytest.approx(2.0 + 1.5 * 8.9)
    # the raw view fits (9, 15.5), (8.89, 15.35), (8.96, 15.44): a line, not the stored term
    raw_fit = (raw.fixed_ms(spec), raw.scale(spec))
    assert raw_fit != pytest.approx((0.25, 1.5)) and raw_fit != pytest.approx((2.0, 1.5))
    unreadable = {context_key(spec): (0.25, {"points": [{"widths": {"nope": 1}, "net_ms": 3.0}],
                                            "scale": 1.5})}
    assert LatencyView(fingerprint(), rows, unreadable).scale(spec) == 1.5  # as stored
