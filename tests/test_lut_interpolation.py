"""The view: block costs from chains, interpolation within residue classes, prediction (golden values)."""

from __future__ import annotations

import pytest

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError
from perfstudent.lut import LatencyView, context_key
from perfstudent.profiler.measurement import Measurement
from perfstudent.students import full_spec, get_family
from tests.lut_helpers import block, fingerprint, lone_rows, measurement


def staircase(width: int) -> float:
    """A synthetic staircase: 1 ms per block of 8 channels, blocks counted upward."""
    return float((width + 7) // 8)


def view_of(widths: list[int], alignment: int = 1) -> LatencyView:
    return LatencyView(fingerprint(width_alignment=alignment),
                       lone_rows({w: staircase(w) for w in widths}, full=32))


def test_a_block_in_two_chains_costs_the_difference_per_extra_copy() -> None:
    b = block(5)
    view = LatencyView(fingerprint(), {Chain(b, 1): measurement(3.0), Chain(b, 3): measurement(7.0)})
    assert view.block_ms(b) == pytest.approx(2.0)  # (7 - 3) / (3 - 1): entry and exit cancel
    alone = LatencyView(fingerprint(), {Chain(b, 1): measurement(3.0)})
    assert alone.block_ms(b) == 3.0


def test_exact_rows_are_returned_unchanged() -> None:
    view = view_of([1, 8, 9, 16])
    assert [view.block_ms(block(w, full=32)) for w in (1, 8, 9, 16)] == [1.0, 1.0, 2.0, 2.0]


def test_step_between_adjacent_measurements_stays_a_step() -> None:
    view = view_of([1, 8, 9, 16, 17, 24])
    assert [view.block_ms(block(w, full=32)) for w in range(1, 25)] == \
        [staircase(w) for w in range(1, 25)]


def test_linear_between_neighbours_never_leaves_their_range() -> None:
    view = view_of([1, 8, 16])  # 12 lies on the line from (8, 1) to (16, 2)
    assert view.block_ms(block(12, full=32)) == pytest.approx(1.5)
    assert view.block_ms(block(9, full=32)) == pytest.approx(1.125)
    values = [view.block_ms(block(w, full=32)) for w in range(8, 17)]
    assert min(values) >= 1.0 and max(values) <= 2.0 and values == sorted(values)


def test_aligned_and_other_widths_are_interpolated_apart() -> None:
    # Multiples of 4 cost 1 ms, the others 5 ms: two staircases interleaved, as ORT at ``all``.
    costs = {w: 1.0 if w % 4 == 0 else 5.0 for w in (4, 16, 1, 15)}
    view = LatencyView(fingerprint(width_alignment=4), lone_rows(costs, full=16))
    assert view.block_ms(block(8)) == 1.0 and view.block_ms(block(12)) == 1.0
    assert view.block_ms(block(9)) == 5.0 and view.block_ms(block(7)) == 5.0
    mixed = LatencyView(fingerprint(), lone_rows(costs, full=16))  # alignment 1: classes mixed
    assert mixed.block_ms(block(8)) not in (1.0, 5.0)


def test_no_extrapolation_and_the_error_names_the_command() -> None:
    view = view_of([1, 8])
    with pytest.raises(InputError, match="perfstudent profile"):
        view.block_ms(block(9, full=32))
    with pytest.raises(InputError, match="no row"):
        view.block_ms(block(4, full=32, size=4))  # another series


def test_the_estimator_rereads_the_raw_samples() -> None:
    m = Measurement.from_samples([1.0, 2.0, 3.0, 4.0, 5.0])
    rows = {Chain(block(4), 1): m}
    assert LatencyView(fingerprint(), rows).block_ms(block(4)) == pytest.approx(1.8)  # p20
    assert LatencyView(fingerprint(), rows, estimator="min").block_ms(block(4)) == 1.0
    assert LatencyView(fingerprint(), rows, estimator="median").block_ms(block(4)) == 3.0


def test_predict_is_the_fixed_term_plus_each_slot_block() -> None:
    spec = full_spec("resnet20", input_size=8)
    blocks = get_family("resnet20").block_shapes(spec)
    cost = {series: 0.01 * (i + 1) for i, series in enumerate(dict.fromkeys(blocks.values()))}
    rows = {Chain(b.at(w), 1): measurement(cost[b] * w) for b in cost for w in range(1, b.full + 1)}
    view = LatencyView(fingerprint(), rows, {context_key(spec): (0.25, {})})
    student = spec.with_widths({"layer1.1": 3, "layer3.2": 40})
    pred = view.predict(student)
    expected = 0.25 + sum(cost[blocks[s]] * w for s, w in student.widths.items())
    assert pred.total_ms == pytest.approx(expected)
    assert pred.fixed_ms == 0.25 and [s for s, _, _ in pred.per_slot] == list(spec.widths)
    assert view.slot_ms(spec, "layer1.1", 3) == pytest.approx(cost[blocks["layer1.1"]] * 3)
    with pytest.raises(InputError, match="overhead"):
        LatencyView(fingerprint(), rows).predict(spec)
