"""Step-preserving interpolation between measured widths, and prediction (golden values)."""

from __future__ import annotations

import pytest

from perfstudent.convshape import ConvShape
from perfstudent.errors import InputError
from perfstudent.lut import LatencyView
from perfstudent.students import conv_shapes, full_spec
from tests.lut_helpers import fingerprint, measurement


def staircase(cout: int) -> float:
    """A synthetic staircase: 1 ms per block of 8 output channels, blocks counted upward."""
    return float((cout + 7) // 8)


def conv(cout: int, cin: int = 16) -> ConvShape:
    return ConvShape("conv2d", cin, cout, 8, 8, kernel=3, padding=1, epilogue="bn+relu")


def view_of(widths: list[int]) -> LatencyView:
    return LatencyView(fingerprint(), {conv(w): measurement(staircase(w)) for w in widths})


def test_exact_rows_are_returned_unchanged() -> None:
    view = view_of([1, 8, 9, 16])
    assert [view.layer_ms(conv(w)) for w in (1, 8, 9, 16)] == [1.0, 1.0, 2.0, 2.0]


def test_step_between_adjacent_measurements_stays_a_step() -> None:
    # Steps found (8|9 and 16|17): every width inside a flat stretch gets the flat value.
    view = view_of([1, 8, 9, 16, 17, 24])
    assert [view.layer_ms(conv(w)) for w in range(1, 25)] == [staircase(w) for w in range(1, 25)]


def test_linear_between_neighbours_never_leaves_their_range() -> None:
    # Only 8 and 16 measured around 12: straight line 1 + (2-1)*(12-8)/8 = 1.5.
    view = view_of([1, 8, 16])
    assert view.layer_ms(conv(12)) == pytest.approx(1.5)
    assert view.layer_ms(conv(9)) == pytest.approx(1.125)
    values = [view.layer_ms(conv(w)) for w in range(8, 17)]
    assert min(values) >= 1.0 and max(values) <= 2.0
    assert values == sorted(values)  # no overshoot, no dip


def test_interpolation_along_cin() -> None:
    rows = {conv(32, cin): measurement(float(cin)) for cin in (4, 12)}
    view = LatencyView(fingerprint(), rows)
    assert view.layer_ms(conv(32, 6)) == pytest.approx(6.0)
    assert view.layer_ms(conv(32, 2)) == pytest.approx(4.0)  # below the smallest: its value


def test_no_extrapolation_and_the_error_names_the_command() -> None:
    view = view_of([1, 8])
    with pytest.raises(InputError, match="perfstudent profile"):
        view.layer_ms(conv(9))
    with pytest.raises(InputError, match="no row"):
        view.layer_ms(conv(4).replace(kernel=1, padding=0))


def test_predict_is_layer_sum_plus_overhead() -> None:
    spec = full_spec("resnet20", input_size=8)
    layers = conv_shapes(spec)
    rows = {layer.shape: measurement(0.01 * (i + 1)) for i, layer in enumerate(layers)}
    ctx = '{"batch":1,"family":"resnet20","in_channels":3,"input_size":8,"num_classes":10}'
    view = LatencyView(fingerprint(), rows, {ctx: (0.25, {})})
    pred = view.predict(spec)
    expected = sum(rows[layer.shape].median_ms for layer in layers) + 0.25
    assert pred.total_ms == pytest.approx(expected)
    assert pred.overhead_ms == 0.25 and len(pred.per_layer) == len(layers)
    with pytest.raises(InputError, match="overhead"):
        LatencyView(fingerprint(), rows).predict(spec)


def test_random_spec_distributions() -> None:
    from perfstudent.lut.validate import random_specs, spearman

    base = full_spec("resnet20")
    for dist in ("uniform", "scaled"):
        specs = random_specs(base, 20, seed=1, distribution=dist)
        assert all(1 <= w <= base.widths[s] for spec in specs for s, w in spec.widths.items())
        assert specs == random_specs(base, 20, seed=1, distribution=dist)
    with pytest.raises(InputError):
        random_specs(base, 2, distribution="normal")
    assert spearman([1.0, 2.0, 3.0], [10.0, 30.0, 20.0]) == pytest.approx(0.5)


def test_overhead_model_fixed_plus_weight_megabytes() -> None:
    from perfstudent.lut import weight_mb
    from perfstudent.profiler.sweep import fit_overhead

    spec = full_spec("resnet20", input_size=8)
    # resnet20 weights, counted independently: stem 3*16*9, 9 blocks of two 3x3 convs,
    # two 1x1 downsamples, fc 64*10
    convs = 3 * 16 * 9 + 3 * 2 * 16 * 16 * 9 + (16 * 32 * 9 + 32 * 32 * 9 + 4 * 32 * 32 * 9) \
        + (32 * 64 * 9 + 64 * 64 * 9 + 4 * 64 * 64 * 9) + 16 * 32 + 32 * 64 + 64 * 10
    assert weight_mb(spec) == pytest.approx(convs * 4 / 1e6)
    points = [{"residual_ms": 0.1 + 0.5 * mb, "weight_mb": mb} for mb in (0.1, 0.3, 0.6, 1.1)]
    assert fit_overhead(points) == pytest.approx((0.1, 0.5))
    falling = [{"residual_ms": 0.3 - 0.1 * mb, "weight_mb": mb} for mb in (0.1, 0.5, 1.0)]
    assert fit_overhead(falling) == pytest.approx((0.25, 0.0))  # no negative slope: median
    rows = {layer.shape: measurement(0.01) for layer in conv_shapes(spec)}
    ctx = '{"batch":1,"family":"resnet20","in_channels":3,"input_size":8,"num_classes":10}'
    view = LatencyView(fingerprint(), rows, {ctx: (0.1, {"ms_per_weight_mb": 0.5})})
    assert view.overhead_ms(spec) == pytest.approx(0.1 + 0.5 * weight_mb(spec))
