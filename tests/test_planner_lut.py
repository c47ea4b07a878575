"""The planner on the profiler's real LatencyView type (rows built here, not measured).

Checks the contract between the two areas: make_plan's prediction is the view's
own ``predict``, interpolated widths are planned on, and a LUT without the
arch's overhead term fails with the profile command that fills it.
"""

from __future__ import annotations

import pytest

from perfstudent.errors import InputError
from perfstudent.students import family_shapes, full_spec
from perfstudent.students.planner import make_plan
from perfstudent.students.synthetic_latency import StaircaseModel

lut = pytest.importorskip("perfstudent.lut", reason="the profiler's LUT has not landed")
measurement = pytest.importorskip("perfstudent.profiler.measurement")

MODEL = StaircaseModel(noise=0.02)


def make_view(arch: str, with_overhead: bool = True) -> object:
    fp = lut.Fingerprint(device="synthetic", device_model="none", device_properties={},
                         backend="staircase", backend_version="0", settings={}, threads=1)
    base = full_spec(arch)
    measured = {w: sorted({1, 2, 3, *range(4, w + 1, 4), w}) for w in set(base.widths.values())}
    widths = {s: measured[w] for s, w in base.widths.items()}  # every 4th width: the rest interpolate
    rows = {shape: measurement.Measurement.from_repeats([MODEL.layer_ms(shape)] * 3, inner=1, warmup_s=0.0)
            for shape in family_shapes(arch, widths=widths)}
    context = lut.spec_context(base)
    overheads = {lut.store._canon(context): (MODEL.overhead_ms(base), {})} if with_overhead else {}
    return lut.LatencyView(fp, rows, overheads)


def test_plan_prediction_is_the_views_prediction() -> None:
    view = make_view("resnet20")
    base = full_spec("resnet20")
    full = view.predict(base).total_ms
    for fraction in (0.6, 0.8):
        for strategy in ("perf", "uniform"):
            plan = make_plan(strategy, fraction * full, view, base)
            assert plan.predicted_ms == pytest.approx(view.predict(plan.spec).total_ms, rel=1e-12)
            assert plan.predicted_ms <= fraction * full
    plan = make_plan("perf", 0.7 * full, view, base)
    assert plan.device == "synthetic" and plan.threads == 1
    assert plan.fingerprint["backend"] == "staircase"


def test_missing_overhead_names_the_profile_command() -> None:
    view = make_view("resnet20", with_overhead=False)
    with pytest.raises(InputError, match=r"perfstudent profile .*--arch resnet20 --input-size 32"):
        make_plan("perf", 5.0, view, full_spec("resnet20"))
