"""``enhance``: widen a given student within a tolerance of predicted latency, never narrowing.

Library tests on the synthetic staircase model (:mod:`perfstudent.plan.synthetic`), a property
test over random students and tolerances, and the command line with every bad-input path.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from perfstudent import pipeline
from perfstudent.cli import cli
from perfstudent.errors import InputError
from perfstudent.measurement import Measurement
from perfstudent.plan.enhance import (
    MAX_CELLS,
    Tolerance,
    enhance,
    parse_tolerance,
    predicted_ms,
    widen,
)
from perfstudent.plan.planner import Plan, make_plan
from perfstudent.plan.problem import build_problem
from perfstudent.plan.saliency import Saliency
from perfstudent.plan.synthetic import StaircaseModel
from perfstudent.students import WidthSpec, full_spec
from tests.cli_contract import fails_cleanly, one_line_error

NOISY = StaircaseModel(noise=0.05, seed=3)
FLAT = StaircaseModel()  # exact staircase: widths of one 8-channel block cost the same
BASE = full_spec("resnet20")


def random_spec(rng: np.random.Generator, base: WidthSpec = BASE) -> WidthSpec:
    return base.with_widths({s: int(rng.integers(1, w + 1)) for s, w in base.widths.items()})


# -- the tolerance -------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "fraction", "ms"), [
    ("1%", 0.01, None), ("0.5 %", 0.005, None), ("0%", 0.0, None), ("100%", 1.0, None),
    ("20us", None, 0.02), ("0.02ms", None, 0.02), ("0", None, 0.0), ("1e-3s", None, 1.0),
])
def test_tolerance_parses(text: str, fraction: float | None, ms: float | None) -> None:
    tol = parse_tolerance(text)
    assert tol.fraction == (pytest.approx(fraction) if fraction is not None else None)
    assert tol.ms == (pytest.approx(ms) if ms is not None else None)
    assert tol.of(2.0) == pytest.approx(ms if ms is not None else 2.0 * (fraction or 0.0))


@pytest.mark.parametrize("text", ["abc", "5", "-1%", "101%", "nan%", "inf%", "%", "1%%", "-2us",
                                  "1 parsec", ""])
def test_bad_tolerance_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match="tolerance"):
        parse_tolerance(text)


# -- widening --------------------------------------------------------------------------------
def test_zero_tolerance_fills_each_step_and_costs_nothing() -> None:
    """On an exact staircase of 8-channel blocks, every slot goes to the top of its block."""
    spec = BASE.with_widths({s: max(1, w // 2 - 3) for s, w in BASE.widths.items()})  # 5, 13, 29
    plan = enhance(FLAT, spec, parse_tolerance("0"))
    expected = {s: min(BASE.widths[s], math.ceil(w / 8) * 8) for s, w in spec.widths.items()}
    assert plan.spec.widths == expected
    assert plan.predicted_ms == pytest.approx(predicted_ms(FLAT, spec), rel=1e-12)
    assert plan.enhanced is not None
    assert plan.enhanced.gained == {s: expected[s] - w for s, w in spec.widths.items()}
    assert plan.enhanced.before == spec and plan.enhanced.tolerance_ms == 0.0


def test_a_student_at_step_tops_gains_nothing_without_tolerance() -> None:
    spec = BASE.with_widths({s: 8 for s in BASE.widths})
    assert enhance(FLAT, spec, parse_tolerance("0")).spec == spec


def test_tolerance_buys_the_next_steps() -> None:
    spec = BASE.with_widths({s: 8 for s in BASE.widths})
    before = predicted_ms(FLAT, spec)
    small = enhance(FLAT, spec, parse_tolerance("5%"))
    large = enhance(FLAT, spec, parse_tolerance("50%"))
    gained = [sum(p.spec.widths.values()) - sum(spec.widths.values()) for p in (small, large)]
    assert 0 < gained[0] < gained[1]
    assert small.predicted_ms <= before * 1.05 and large.predicted_ms <= before * 1.5
    assert all(w % 8 == 0 for p in (small, large) for w in p.spec.widths.values())  # step tops


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), percent=st.floats(0, 30), absolute=st.booleans(),
       noise_seed=st.integers(0, 5))
@example(seed=0, percent=2.2e-311, absolute=False, noise_seed=0)  # a denormal grid once overflowed
def test_never_narrows_never_exceeds_the_tolerance(seed: int, percent: float, absolute: bool,
                                                   noise_seed: int) -> None:
    model = replace(NOISY, seed=noise_seed)
    spec = random_spec(np.random.default_rng(seed))
    before = predicted_ms(model, spec)
    tol = Tolerance("x", ms=percent / 1000) if absolute else Tolerance("x", fraction=percent / 100)
    plan = enhance(model, spec, tol)
    for slot, width in spec.widths.items():
        assert width <= plan.spec.widths[slot] <= BASE.widths[slot]
    assert plan.predicted_ms <= before + tol.of(before) + 1e-9
    assert plan.budget_ms == pytest.approx(before + tol.of(before))
    assert plan.predicted_ms == pytest.approx(predicted_ms(model, plan.spec))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), percent=st.floats(0.1, 20))
def test_no_slot_could_widen_further_within_what_is_left(seed: int, percent: float) -> None:
    """Maximality: widening any one slot further would break the tolerance (up to the grid's
    rounding, at most one cell per slot)."""
    spec = random_spec(np.random.default_rng(seed))
    tol = Tolerance("x", fraction=percent / 100)
    before = predicted_ms(NOISY, spec)
    tol_ms = tol.of(before)
    problem = build_problem(NOISY, BASE, {s: [1.0] * w for s, w in BASE.widths.items()},
                            before + tol_ms)
    after = widen(problem, spec.widths, tol_ms)
    curves = {c.slot: c.cost_ms for c in problem.curves}

    def extra(slot: str, width: int) -> float:
        return max(float(curves[slot][width - 1] - curves[slot][spec.widths[slot] - 1]), 0.0)

    spent = sum(extra(s, w) for s, w in after.items())
    assert spent <= tol_ms + 1e-12
    # what is left, less what rounding to the grid may hide: a cell per slot and two more
    room = tol_ms - spent - (len(curves) + 2) * tol_ms / MAX_CELLS
    for s, w in after.items():
        for wider in range(w + 1, BASE.widths[s] + 1):
            assert extra(s, wider) - extra(s, w) > room, (s, w, wider)


def test_saliency_decides_which_slot_widens() -> None:
    """With one slot's channels worth far more, the tolerance goes to that slot first."""
    spec = BASE.with_widths({s: 8 for s in BASE.widths})
    scores = {s: [1e-3] * w for s, w in BASE.widths.items()}
    scores["layer3.2"] = [10.0] * 64
    sal = Saliency("resnet20", 32, 3, 10, scores)
    tol = parse_tolerance("2%")
    by_channels = enhance(FLAT, spec, tol)
    by_saliency = enhance(FLAT, spec, tol, sal)
    assert by_saliency.spec.widths["layer3.2"] > 8
    assert by_saliency.spec.widths["layer3.2"] >= by_channels.spec.widths["layer3.2"]
    assert by_saliency.saliency_kept >= sal.kept(by_channels.spec.widths) - 1e-12
    assert sum(by_channels.spec.widths.values()) >= sum(by_saliency.spec.widths.values())


def test_plan_sources_keep_their_strategy_and_budget() -> None:
    pruned = make_plan("uniform", 0.7 * make_plan("perf", 1e9, NOISY, BASE).predicted_ms, NOISY, BASE)
    first = enhance(NOISY, pruned.spec, parse_tolerance("1%"), source=pruned)
    assert first.strategy == "uniform+enhance"
    assert first.enhanced is not None and first.enhanced.source_strategy == "uniform"
    assert first.enhanced.source_budget_ms == pruned.budget_ms
    again = enhance(NOISY, first.spec, parse_tolerance("1%"), source=first)
    assert again.strategy == "uniform+enhance"
    mine = enhance(NOISY, pruned.spec, parse_tolerance("1%"))
    assert mine.strategy == "enhance" and mine.enhanced is not None
    assert mine.enhanced.source_strategy is None
    round_trip = Plan.from_json(first.to_json())
    assert round_trip.enhanced == first.enhanced and round_trip.spec == first.spec


def test_over_the_source_budget_is_a_warning() -> None:
    full_ms = make_plan("perf", 1e9, NOISY, BASE).predicted_ms
    tight = make_plan("uniform", 0.6 * full_ms, NOISY, BASE)
    widened = enhance(NOISY, tight.spec, parse_tolerance("20%"), source=tight)
    assert widened.predicted_ms > tight.budget_ms
    assert widened.warnings == [w for w in widened.warnings if "above the source plan's budget" in w]
    assert len(widened.warnings) == 1
    elsewhere = replace(tight, fingerprint={"device": "pi4"})
    moved = enhance(NOISY, tight.spec, parse_tolerance("0"), source=elsewhere)
    assert any("another LUT fingerprint" in w for w in moved.warnings)


# -- the command line ----------------------------------------------------------------------------
@pytest.fixture
def synthetic_lut(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []

    def fake_open(target: Any, lut: Path | None) -> StaircaseModel:
        calls.append((lut, target.device, target.backend, target.threads))
        return NOISY

    monkeypatch.setattr(pipeline, "open_view", fake_open)
    return calls


@pytest.fixture
def student(tmp_path: Path) -> Path:
    path = tmp_path / "student.json"
    random_spec(np.random.default_rng(7)).save(path)
    return path


def test_enhance_a_spec(tmp_path: Path, student: Path, synthetic_lut: list[Any]) -> None:
    out = tmp_path / "enhanced.json"
    result = CliRunner().invoke(cli, ["enhance", "--spec", str(student), "--lut", str(tmp_path / "l.db"),
                                      "--tolerance", "2%", "--out", str(out)])
    assert result.exit_code == 0, result.output
    plan = Plan.load(out)
    before = WidthSpec.load(student)
    assert plan.strategy == "enhance" and plan.enhanced is not None
    assert plan.enhanced.before == before and plan.enhanced.tolerance == "2%"
    assert all(plan.spec.widths[s] >= w for s, w in before.widths.items())
    gained = sum(plan.enhanced.gained.values())
    assert gained > 0 and f"channels gained: {gained}" in result.output
    assert "predicted:" in result.output and "wrote" in result.output
    assert synthetic_lut == [(tmp_path / "l.db", "local", "onnxruntime", 1)]


def test_enhance_a_torch_pruning_plan(tmp_path: Path, synthetic_lut: list[Any]) -> None:
    pytest.importorskip("torch_pruning")
    import torch

    from perfstudent.students import build

    torch.manual_seed(0)
    full = make_plan("perf", 1e9, NOISY, BASE).predicted_ms
    source = make_plan("torch-pruning", 0.6 * full, NOISY, BASE, teacher=build(BASE))
    path, out = tmp_path / "tp.json", tmp_path / "tp-enhanced.json"
    source.save(path)
    result = CliRunner().invoke(cli, ["enhance", "--plan", str(path), "--tolerance", "0.01ms",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    plan = Plan.load(out)
    assert plan.strategy == "torch-pruning+enhance" and plan.macs is None
    assert all(plan.spec.widths[s] >= w for s, w in source.spec.widths.items())
    assert plan.predicted_ms <= source.predicted_ms + 0.01 + 1e-9


def test_measure_times_both_students_together(tmp_path: Path, student: Path,
                                              synthetic_lut: list[Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    timed: list[list[WidthSpec]] = []

    def fake_measure(target: Any, specs: list[WidthSpec]) -> list[Measurement]:
        timed.append(specs)
        return [Measurement.from_samples([ms] * 3, inner=1, estimator="min") for ms in (2.0, 2.1)]

    monkeypatch.setattr(pipeline, "measure_together", fake_measure)
    out = tmp_path / "e.json"
    result = CliRunner().invoke(cli, ["enhance", "--spec", str(student), "--measure",
                                      "--protocol", "smoke", "--out", str(out)])
    assert result.exit_code == 0, result.output
    plan = Plan.load(out)
    assert plan.enhanced is not None and plan.enhanced.measured_after is not None
    assert timed == [[WidthSpec.load(student), plan.spec]]
    assert plan.enhanced.measured_before is not None and plan.enhanced.measured_before.ms == 2.0
    assert "measured: 2 ms -> 2.1 ms (+5.0%)" in result.output


def test_enhance_on_a_real_lut_and_a_real_measurement(tmp_path: Path) -> None:
    """A LUT with rows written (not timed) for resnet20 at 8 px; the two students measured for
    real with the smoke protocol (nothing is asserted about their times)."""
    from perfstudent.lut import Fingerprint, LatencyTable
    from perfstudent.profiler.backends import get_backend
    from perfstudent.profiler.devices import get_device
    from tests.lut_helpers import fill_lut

    lut = tmp_path / "lut.sqlite"
    fp = Fingerprint.for_backend(get_backend("onnxruntime", get_device("local"), 1))
    with LatencyTable.open(lut) as table:
        fill_lut(table, fp, "resnet20", 8)
    spec_path, out = tmp_path / "s.json", tmp_path / "e.json"
    base8 = full_spec("resnet20", 8)
    base8.with_widths({s: 3 for s in base8.widths}).save(spec_path)
    result = CliRunner().invoke(cli, ["enhance", "--spec", str(spec_path), "--lut", str(lut),
                                      "--tolerance", "0", "--measure", "--protocol", "smoke",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    plan = Plan.load(out)
    assert plan.spec.widths == {s: 8 for s in base8.widths}  # the top of the first 8-channel step
    assert plan.enhanced is not None and plan.enhanced.measured_before is not None
    assert plan.enhanced.measured_after is not None and "measured:" in result.output
    # another family than the LUT holds: refused, naming the profile command
    other = tmp_path / "other.json"
    full_spec("resnet56", 8).save(other)
    fails_cleanly(["enhance", "--spec", str(other), "--lut", str(lut), "--out",
                   str(tmp_path / "o.json")], "perfstudent profile", keep=[lut])
    assert not (tmp_path / "o.json").exists()


@pytest.mark.usefixtures("synthetic_lut")
@pytest.mark.parametrize(("args", "message"), [
    (["--spec", "@missing"], "not found"),
    (["--plan", "@missing"], "not found"),
    ([], "exactly one of --spec or --plan"),
    (["--spec", "@student", "--plan", "@plan"], "exactly one of --spec or --plan"),
    (["--spec", "@student", "--tolerance", "fast"], "tolerance"),
    (["--spec", "@student", "--tolerance", "-1%"], "percentage in [0, 100]"),
    (["--spec", "@student", "--tolerance", "3"], "has no unit"),
    (["--plan", "@student"], "not a plan file"),
    (["--spec", "@bad-spec"], "width of slot layer1.0 must be in 1..16"),
    (["--spec", "@student", "--saliency", "@sal56"], "for resnet56, not resnet20"),
])
def test_bad_input_exits_2(tmp_path: Path, student: Path, args: list[str], message: str) -> None:
    plan = tmp_path / "plan.json"
    make_plan("uniform", 1e9, NOISY, BASE).save(plan)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**BASE.to_dict(), "widths": {**BASE.widths, "layer1.0": 99}}))
    sal56 = tmp_path / "sal56.json"
    spec56 = full_spec("resnet56")
    Saliency("resnet56", 32, 3, 10, {s: [1.0] * w for s, w in spec56.widths.items()}).save(sal56)
    files = {"@missing": tmp_path / "missing.json", "@student": student, "@plan": plan,
             "@bad-spec": bad, "@sal56": sal56}
    argv = [str(files[a]) if a in files else a for a in args]
    out = tmp_path / "out.json"
    fails_cleanly(["enhance", *argv, "--out", str(out)], message, keep=[student, plan])
    assert not out.exists()


@pytest.mark.usefixtures("synthetic_lut")
def test_out_equal_to_an_input_is_refused(tmp_path: Path, student: Path) -> None:
    plan = tmp_path / "plan.json"
    make_plan("uniform", 1e9, NOISY, BASE).save(plan)
    fails_cleanly(["enhance", "--spec", str(student), "--out", str(student)], "also an input",
                  keep=[student])
    fails_cleanly(["enhance", "--plan", str(plan), "--out", str(plan)], "also an input",
                  keep=[plan])
    link = tmp_path / "link.json"
    link.symlink_to(plan)
    fails_cleanly(["enhance", "--plan", str(plan), "--out", str(link)], "also an input",
                  keep=[plan])
    lut = tmp_path / "lut.db"
    lut.write_bytes(b"SQLite format 3\x00")
    fails_cleanly(["enhance", "--spec", str(student), "--lut", str(lut), "--out", str(lut)],
                  "also an input", keep=[lut])


@pytest.mark.usefixtures("synthetic_lut")
def test_out_of_another_kind_needs_force(tmp_path: Path, student: Path) -> None:
    out = tmp_path / "sal.json"
    Saliency("resnet20", 32, 3, 10, {s: [1.0] * w for s, w in BASE.widths.items()}).save(out)
    fails_cleanly(["enhance", "--spec", str(student), "--out", str(out)], "pass --force",
                  keep=[out])
    result = CliRunner().invoke(cli, ["enhance", "--spec", str(student), "--out", str(out),
                                      "--force"])
    assert result.exit_code == 0, result.output
    assert Plan.load(out).strategy == "enhance"


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["enhance", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output and "--tolerance" in result.output


def test_a_broken_plan_exits_2(tmp_path: Path, synthetic_lut: list[Any]) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "perfstudent.plan/1", "strategy": "x"}')
    result = CliRunner().invoke(cli, ["enhance", "--plan", str(broken), "--out",
                                      str(tmp_path / "o.json")])
    assert "missing" in one_line_error(result)
