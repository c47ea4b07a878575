"""perfstudent.records: the one rule (schema name, newer refused, older migrated, unknown keys
refused, typed sub-records) on a toy record and on the formats users see."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfstudent.errors import InputError, SpecError
from perfstudent.experiment.engine import State, StepState
from perfstudent.measurement import ESTIMATORS, Measurement
from perfstudent.pipeline.validate import ValidatedStudent, ValidationReport
from perfstudent.plan.planner import Plan, SaliencySource, SlotCost, SlotRow, Verification
from perfstudent.plan.saliency import Saliency
from perfstudent.records import Record, parse_schema
from perfstudent.students import WidthSpec, full_spec


@dataclass(frozen=True)
class Tag(Record):
    name: str
    weight: float = 1.0


@dataclass(frozen=True)
class Point(Record):
    """A toy format at version 3; version 1 wrote ``xy``, version 2 is not readable."""

    SCHEMA = "perfstudent.test-point/3"

    x: float
    y: float
    tags: tuple[Tag, ...] = ()
    where: Path | None = None

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version == 1:
            x, y = data.pop("xy")
            return {**data, "x": x, "y": y}
        return super().migrate(data, version)


def test_to_dict_writes_the_schema_and_plain_json_data() -> None:
    point = Point(1.0, 2.5, (Tag("a"), Tag("b", 0.5)), Path("/tmp/p"))
    assert point.to_dict() == {"schema": "perfstudent.test-point/3", "x": 1.0, "y": 2.5,
                               "tags": [{"name": "a", "weight": 1.0}, {"name": "b", "weight": 0.5}],
                               "where": "/tmp/p"}
    back = Point.from_dict(json.loads(point.to_json()))
    assert back == point and isinstance(back.tags[0], Tag) and back.where == Path("/tmp/p")


def test_unknown_keys_are_refused_by_name() -> None:
    data = {**Point(1.0, 2.0).to_dict(), "z": 3, "colour": "red"}
    with pytest.raises(InputError, match="test-point file has unknown keys: z, colour"):
        Point.from_dict(data)
    nested = {**Point(1.0, 2.0, (Tag("a"),)).to_dict()}
    nested["tags"][0]["size"] = 1
    with pytest.raises(InputError, match=r"tags\[0\] has unknown keys: size"):
        Point.from_dict(nested)


def test_newer_version_is_refused() -> None:
    newer = ("written by a newer perfstudent: perfstudent.test-point/4, "
             "this one reads perfstudent.test-point/3")
    with pytest.raises(InputError, match=re.escape(newer)):
        Point.from_dict({"schema": "perfstudent.test-point/4", "x": 1.0, "y": 2.0})


def test_older_version_is_read_through_migrate_or_refused() -> None:
    assert Point.from_dict({"schema": "perfstudent.test-point/1", "xy": [1, 2]}) == Point(1.0, 2.0)
    with pytest.raises(InputError, match=r"perfstudent\.test-point/2 is an old format"):
        Point.from_dict({"schema": "perfstudent.test-point/2", "x": 1.0, "y": 2.0})


@pytest.mark.parametrize(("data", "message"), [
    ({"schema": "perfstudent.plan/1", "x": 1.0, "y": 2.0}, "not a test-point file: its schema is "
                                                            "'perfstudent.plan/1'"),
    ({"x": 1.0, "y": 2.0}, "not a test-point file: it has no schema"),
    ([1.0, 2.0], "not a test-point file: expected a JSON object, got list"),
    ({"schema": "perfstudent.test-point/3", "x": 1.0}, "malformed test-point file: missing y"),
    ({"schema": "perfstudent.test-point/3", "x": "1", "y": 2.0}, "x must be a number, got '1'"),
    ({"schema": "perfstudent.test-point/3", "x": True, "y": 2.0}, "x must be a number, got True"),
    ({"schema": "perfstudent.test-point/3", "x": 1, "y": 2, "tags": {}}, "tags must be a list"),
    ({"schema": "perfstudent.test-point/3", "x": 1, "y": 2, "tags": [{"name": 3}]},
     r"tags\[0\].name must be a string, got 3"),
    ({"schema": "perfstudent.test-point/3", "x": 1, "y": 2, "tags": ["a"]},
     r"tags\[0\] must be a JSON object"),
])
def test_bad_data_is_an_input_error_naming_the_problem(data: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Point.from_dict(data)


def test_schema_parsing() -> None:
    assert parse_schema("perfstudent.plan/1") == ("perfstudent.plan", 1)
    assert parse_schema("perfstudent.plan") is None and parse_schema(None) is None
    assert parse_schema("/1") is None and parse_schema("perfstudent.plan/x") is None


def test_load_and_save_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "point.json"
    Point(1.0, 2.0).save(path)
    assert Point.load(path) == Point(1.0, 2.0)
    assert [p.name for p in path.parent.iterdir()] == ["point.json"]  # no temporary left behind
    with pytest.raises(InputError, match="test-point file not found"):
        Point.load(tmp_path / "missing.json")
    path.write_text("{not json")
    with pytest.raises(InputError, match=f"{path}: the file is not valid JSON"):
        Point.load(path)
    path.write_text('{"schema": "perfstudent.test-point/9"}')
    with pytest.raises(InputError, match=f"{path}: written by a newer perfstudent"):
        Point.load(path)
    with pytest.raises(SpecError, match=f"{path}: not a spec file"):
        WidthSpec.load(path)


# --- the formats users see -------------------------------------------------------------------

def _plan(**changes: Any) -> Plan:
    spec = full_spec("resnet20").with_widths({"layer1.0": 9})
    fields: dict[str, Any] = dict(
        strategy="perf", budget_ms=2.0, margin_ms=0.1, spec=spec, predicted_ms=1.8, overhead_ms=0.2,
        per_slot=[SlotCost(s, w, 0.1) for s, w in spec.widths.items()], saliency_kept=0.9,
        device="local", backend="onnxruntime", threads=1, fingerprint={"backend": "onnxruntime"},
        slots=[SlotRow("layer1.0", 9, 16, 0.1, True, 12, 0.02),
               SlotRow("layer3.2", 64, 64, 0.3, True)],
        grid_ms=0.001, saliency=SaliencySource({"run": "teacher", "sha256": "0" * 64}, 4, 512),
        verified=Verification(1.8, True, "fast",
                              Measurement.from_samples([1.7, 1.8, 1.9], estimator="median")))
    fields.update(changes)
    return Plan(**fields)


def test_plan_round_trips_with_typed_sub_records(tmp_path: Path) -> None:
    plan = _plan()
    plan.save(tmp_path / "plan.json")
    back = Plan.load(tmp_path / "plan.json")
    assert back == plan
    assert isinstance(back.spec, WidthSpec) and isinstance(back.per_slot[0], SlotCost)
    assert isinstance(back.slots[0], SlotRow) and isinstance(back.saliency, SaliencySource)
    assert back.verified is not None and isinstance(back.verified.measurement, Measurement)
    written = json.loads((tmp_path / "plan.json").read_text())
    assert written["spec"]["schema"] == "perfstudent.widthspec/1"
    assert written["verified"]["measurement"]["ms"] == pytest.approx(1.8)  # derived, for readers


def test_plan_of_a_future_schema_or_with_unknown_keys_is_refused() -> None:
    data = _plan().to_dict()
    with pytest.raises(InputError, match=re.escape("written by a newer perfstudent: perfstudent.plan/2, "
                                                   "this one reads perfstudent.plan/1")):
        Plan.from_dict({**data, "schema": "perfstudent.plan/2"})
    with pytest.raises(InputError, match="plan file has unknown keys: comment"):
        Plan.from_dict({**data, "comment": "mine"})
    data["per_slot"][0]["cost"] = 1.0
    with pytest.raises(InputError, match=r"per_slot\[0\] has unknown keys: cost"):
        Plan.from_dict(data)


def test_plan_written_before_per_slot_costs_still_loads() -> None:
    """plan/1 as the code before per-slot costs wrote it: per_layer, no per_slot, no warnings,
    and a --verify measurement in that time's form."""
    spec = full_spec("resnet20")
    old = {"schema": "perfstudent.plan/1", "strategy": "uniform", "budget_ms": 3.0, "margin_ms": 0.0,
           "spec": spec.to_dict(), "predicted_ms": 2.9, "overhead_ms": 0.3,
           "per_layer": [{"path": "conv1", "role": "stem", "slot": None, "ms": 0.1}],
           "saliency_kept": 1.0, "device": "local", "backend": "torch", "threads": 1,
           "fingerprint": {"backend": "torch"}, "slots": [
               {"slot": "layer1.0", "width": 16, "full": 16, "cost_ms": 0.1, "step_top": True,
                "next_width": None, "next_extra_ms": None}],
           "grid_ms": 0.001, "multiplier": None, "saliency": None,
           "verified": {"measured_ms": 2.8, "within_budget": True,
                        "measurement": {"median_ms": 2.8, "p90_ms": 2.9}}}
    plan = Plan.from_dict(old)
    assert plan.per_slot == [] and plan.spec == spec and plan.slots[0].step_top
    assert plan.verified == Verification(2.8, True)
    assert Plan.from_dict(plan.to_dict()) == plan


def test_saliency_and_widthspec_files_of_the_current_form_load(tmp_path: Path) -> None:
    saliency = {"schema": "perfstudent.saliency/1", "family": "resnet20", "input_size": 32,
                "in_channels": 3, "num_classes": 10, "teacher": {"run": "t"}, "batches": 2,
                "samples": 256, "mode": "eval", "slots": {"layer1.0": [1, 0.5]}}
    (tmp_path / "sal.json").write_text(json.dumps(saliency))
    loaded = Saliency.load(tmp_path / "sal.json")
    assert loaded.slots == {"layer1.0": [1.0, 0.5]} and loaded.to_dict() == {
        **saliency, "slots": {"layer1.0": [1.0, 0.5]}}
    hand_written = {k: v for k, v in full_spec("wrn-16-2").to_dict().items() if k != "schema"}
    assert WidthSpec.from_dict(hand_written) == full_spec("wrn-16-2")


def test_measurement_derived_figures_are_written_and_not_read() -> None:
    m = Measurement.from_samples([3.0, 1.0, 2.0], inner=4, estimator="median")
    data = m.to_dict()
    assert data["ms"] == 2.0 and data["samples"] == 3 and "schema" not in data
    assert Measurement.from_dict({**data, "ms": 99.0}) == m  # derived again, never read
    with pytest.raises(InputError, match="unknown keys: median_ms"):
        Measurement.from_dict({**data, "median_ms": 2.0})


def _validated(n: int) -> list[ValidatedStudent]:
    widths = full_spec("resnet20").widths
    return [ValidatedStudent("uniform", dict(widths), 1.0 + i, 1.0 + i, 1.1 + i,
                             {"lut": 1.05 + i, "macs": 0.9 + i}) for i in range(n)]


def test_validation_report_2_is_migrated_to_3() -> None:
    report = ValidationReport({"backend": "torch"}, "resnet20", 32, "p20", _validated(4),
                              {"ms_per_gmac": 1.0, "intercept_ms": 0.1}, [0.01, 0.03])
    data = report.to_dict()
    assert data["schema"] == "perfstudent.validation/3" and "drift_since_sweep_pct" in data["summary"]
    assert ValidationReport.from_dict(data) == report
    old = {k: v for k, v in data.items() if k != "drift"}
    old["schema"] = "perfstudent.validation/2"
    migrated = ValidationReport.from_dict(old)
    assert migrated.drift == [] and migrated.students == report.students
    assert migrated.summary()["lut"] == report.summary()["lut"]
    assert migrated.residuals() == pytest.approx([-0.05 / 1.05, -0.05 / 2.05, -0.05 / 3.05, -0.05 / 4.05])
    with pytest.raises(InputError, match="old format"):
        ValidationReport.from_dict({**old, "schema": "perfstudent.validation/1"})


def test_experiment_state_of_the_current_form_loads(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"schema": "perfstudent.experiment-state/1", "steps": {
        "a": {"status": "done", "digest": "ab", "started": "t0", "finished": "t1", "seconds": 1.5,
              "error": None},
        "b": {"status": "done", "digest": "cd", "started": None, "finished": "t2", "seconds": 0.0,
              "reused": True}}}))
    state = State.read(path)
    assert state.steps["a"] == StepState("done", "ab", "t0", "t1", 1.5)
    assert state.is_done("b", "cd") and state.steps["b"].reused
    assert State.read(tmp_path / "none.json") == State()


# --- property: to_dict / from_dict round trips ----------------------------------------------

FAMILIES = ["resnet20", "wrn-16-2", "resnet18", "densenet-bc-40"]
numbers = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(max_size=12)


@st.composite
def specs(draw: st.DrawFn) -> WidthSpec:
    base = full_spec(draw(st.sampled_from(FAMILIES)), num_classes=draw(st.integers(1, 1000)),
                     in_channels=draw(st.integers(1, 4)))
    return base.with_widths({s: draw(st.integers(1, w)) for s, w in base.widths.items()})


measurements = st.builds(
    Measurement.from_samples, st.lists(st.floats(0, 1e3), min_size=1, max_size=8),
    st.integers(1, 1000), st.sampled_from(sorted(ESTIMATORS)), st.lists(st.floats(0, 1e3), max_size=3),
    st.booleans())


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    spec = draw(specs())
    rows = [SlotRow(s, w, draw(st.integers(w, 4 * w)), draw(numbers), draw(st.booleans()),
                    draw(st.none() | st.integers(1, 512)), draw(st.none() | numbers))
            for s, w in list(spec.widths.items())[:draw(st.integers(0, len(spec.widths)))]]
    json_values = st.none() | st.booleans() | st.integers() | numbers | texts
    return Plan(
        draw(st.sampled_from(["perf", "pruned", "uniform"])), draw(numbers), draw(numbers), spec,
        draw(numbers), draw(numbers), [SlotCost(s, w, draw(numbers)) for s, w in spec.widths.items()],
        draw(numbers), draw(st.none() | texts), draw(st.none() | texts), draw(st.none() | st.integers(1)),
        draw(st.none() | texts | st.dictionaries(texts, json_values, max_size=3)), rows, draw(numbers),
        draw(st.none() | numbers),
        draw(st.none() | st.builds(SaliencySource, st.dictionaries(texts, json_values, max_size=3),
                                   st.integers(0), st.integers(0))),
        draw(st.none() | st.builds(Verification, numbers, st.booleans(), st.none() | texts,
                                   st.none() | measurements)),
        draw(st.lists(texts, max_size=3)), draw(st.none() | texts))


@settings(max_examples=40, deadline=None)
@given(specs())
def test_widthspec_round_trip_property(spec: WidthSpec) -> None:
    assert WidthSpec.from_dict(spec.to_dict()) == spec
    assert WidthSpec.from_json(spec.to_json()) == spec


@settings(max_examples=40, deadline=None)
@given(plans())
def test_plan_round_trip_property(plan: Plan) -> None:
    assert Plan.from_dict(plan.to_dict()) == plan
    assert Plan.from_json(plan.to_json()) == plan
