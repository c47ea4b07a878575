"""The view: slot costs from chains in context, interpolation by class, prediction (golden values)."""

from __future__ import annotations

import pytest

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError
from perfstudent.lut import LatencyView, context_key
from perfstudent.measurement import Measurement
from perfstudent.students import full_spec, get_family
from tests.lut_helpers import block, fingerprint, lone_rows, measurement


def staircase(width: int) -> float:
    """A synthetic staircase: 1 ms per block of 8 channels, blocks counted upward."""
    return float((width + 7) // 8)


def view_of(widths: list[int], alignment: int = 1) -> LatencyView:
    return LatencyView(fingerprint(width_alignment=alignment),
                       lone_rows({w: staircase(w) for w in widths}, full=32))


def cost(view: LatencyView, width: int, **kwargs: int) -> float:
    return view.chain_ms(Chain(block(width, **kwargs)))


def test_a_block_between_neighbours_costs_its_anchor_plus_the_chains_difference() -> None:
    ctx = Chain(block(16), before=block(16), after=block(16, cin=16))
    rows = {ctx: measurement(10.0), ctx.at(5): measurement(8.5), Chain(block(16)): measurement(3.0)}
    view = LatencyView(fingerprint(), rows)
    assert view.chain_ms(ctx) == pytest.approx(3.0)         # the block alone at full width
    assert view.chain_ms(ctx.at(5)) == pytest.approx(1.5)   # 3 + 8.5 - 10: the neighbours cancel
    without_anchor = LatencyView(fingerprint(), {ctx: measurement(10.0), ctx.at(5): measurement(8.5)})
    with pytest.raises(InputError, match="no row"):
        without_anchor.chain_ms(ctx.at(5))


def test_exact_rows_are_returned_unchanged() -> None:
    view = view_of([1, 8, 9, 16])
    assert [cost(view, w, full=32) for w in (1, 8, 9, 16)] == [1.0, 1.0, 2.0, 2.0]


def test_step_between_adjacent_measurements_stays_a_step() -> None:
    view = view_of([1, 8, 9, 16, 17, 24])
    assert [cost(view, w, full=32) for w in range(1, 25)] == [staircase(w) for w in range(1, 25)]


def test_linear_between_neighbours_never_leaves_their_range() -> None:
    view = view_of([1, 8, 16])  # 12 lies on the line from (8, 1) to (16, 2)
    assert cost(view, 12, full=32) == pytest.approx(1.5)
    assert cost(view, 9, full=32) == pytest.approx(1.125)
    values = [cost(view, w, full=32) for w in range(8, 17)]
    assert min(values) >= 1.0 and max(values) <= 2.0 and values == sorted(values)


def test_aligned_and_other_widths_are_interpolated_apart() -> None:
    # Multiples of 4 cost 1 ms, the others 5 ms: two staircases interleaved, as ORT at ``all``.
    costs = {w: 1.0 if w % 4 == 0 else 5.0 for w in (4, 16, 1, 15)}
    view = LatencyView(fingerprint(width_alignment=4), lone_rows(costs, full=16))
    assert cost(view, 8) == 1.0 and cost(view, 12) == 1.0
    assert cost(view, 9) == 5.0 and cost(view, 7) == 5.0
    mixed = LatencyView(fingerprint(), lone_rows(costs, full=16))  # alignment 1: classes mixed
    assert cost(mixed, 8) not in (1.0, 5.0)


def test_no_extrapolation_and_the_error_names_the_command() -> None:
    view = view_of([1, 8])
    with pytest.raises(InputError, match="perfstudent profile"):
        cost(view, 9, full=32)
    with pytest.raises(InputError, match="no row"):
        cost(view, 4, full=32, size=4)  # another context


def test_the_estimator_rereads_the_raw_samples() -> None:
    rows = {Chain(block(4)): Measurement.from_samples([1.0, 2.0, 3.0, 4.0, 5.0])}
    assert cost(LatencyView(fingerprint(), rows), 4) == pytest.approx(1.8)  # p20
    assert cost(LatencyView(fingerprint(), rows, estimator="min"), 4) == 1.0
    assert cost(LatencyView(fingerprint(), rows, estimator="median"), 4) == 3.0


def test_predict_is_the_fixed_term_plus_each_slot_in_its_context() -> None:
    spec = full_spec("resnet20", input_size=8)
    contexts = get_family("resnet20").slot_chains(spec)
    assert contexts["layer1.1"].before == contexts["layer1.1"].after == contexts["layer1.1"].block
    assert contexts["layer1.0"].before is None and contexts["layer3.2"].after is None
    scale = {c: 0.01 * (i + 1) for i, c in enumerate(dict.fromkeys(contexts.values()))}
    rows = {Chain(c.block): measurement(0.5) for c in scale}  # each block alone at full width
    rows |= {c.at(w): measurement(5.0 + scale[c] * w) for c in scale for w in range(1, c.block.full + 1)}
    view = LatencyView(fingerprint(), rows, {context_key(spec): (0.25, {})})

    def slot(s: str, w: int) -> float:  # anchor + (5 + scale · w) - (5 + scale · full)
        return 0.5 + scale[contexts[s]] * (w - contexts[s].block.full)

    student = spec.with_widths({"layer1.1": 3, "layer3.2": 40})
    pred = view.predict(student)
    assert pred.total_ms == pytest.approx(0.25 + sum(slot(s, w) for s, w in student.widths.items()))
    assert pred.fixed_ms == 0.25 and [s for s, _, _ in pred.per_slot] == list(spec.widths)
    assert view.slot_ms(spec, "layer1.1", 3) == pytest.approx(slot("layer1.1", 3))
    with pytest.raises(InputError, match="overhead"):
        LatencyView(fingerprint(), rows).predict(spec)
