"""The planner on the profiler's real LatencyView type (rows built here, not measured).

Checks the contract between the two areas: make_plan's prediction is the view's
own ``predict`` (one model, so a plan's prediction sits at its budget, not below
it), interpolated widths are planned on, and a LUT without the arch's overhead
term fails with the profile command that fills it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perfstudent.errors import InputError
from perfstudent.lut import LatencyTable, LatencyView
from perfstudent.plan.planner import make_plan
from perfstudent.students import full_spec
from tests.lut_helpers import fill_lut, fingerprint


def make_view(tmp_path: Path, arch: str, with_overhead: bool = True) -> LatencyView:
    with LatencyTable.open(tmp_path / "l.sqlite") as table:
        fill_lut(table, fingerprint(), arch, 32, step=4)  # every 4th width: the rest interpolate
        view = table.view(fingerprint())
    return view if with_overhead else LatencyView(view.fingerprint, view.measurements, {})


def test_plan_prediction_is_the_views_prediction_and_fills_the_budget(tmp_path: Path) -> None:
    view = make_view(tmp_path, "resnet20")
    base = full_spec("resnet20")
    full = view.predict(base).total_ms
    for fraction in (0.6, 0.8):
        for strategy in ("perf", "uniform"):
            plan = make_plan(strategy, fraction * full, view, base)
            assert plan.predicted_ms == pytest.approx(view.predict(plan.spec).total_ms, rel=1e-12)
            assert plan.predicted_ms <= fraction * full
            if strategy == "perf":  # no reserve for a term of the full network: the budget is used
                assert plan.predicted_ms >= 0.97 * fraction * full
    plan = make_plan("perf", 0.7 * full, view, base)
    assert plan.device == "local" and plan.threads == 1
    assert plan.fingerprint["backend"] == "onnxruntime"
    assert [r.slot for r in plan.per_slot] == list(base.widths)


def test_missing_overhead_names_the_profile_command(tmp_path: Path) -> None:
    view = make_view(tmp_path, "resnet20", with_overhead=False)
    with pytest.raises(InputError, match=r"perfstudent profile .*--family resnet20 --input-size 32"):
        make_plan("perf", 5.0, view, full_spec("resnet20"))
