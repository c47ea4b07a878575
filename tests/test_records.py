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
from perfstudent.measurement import Measurement
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
    with pytest.raises(InputError, match=f"{path}: malformed JSON"):
        Point.load(path)
    path.write_text('{"schema": "perfstudent.test-point/9"}')
    with pytest.raises(InputError, match=f"{path}: written by a newer perfstudent"):
        Point.load(path)
    with pytest.raises(SpecError, match=f"{path}: not a spec file"):
        WidthSpec.load(path)


# --- the formats users see -------------------------------------------------------------------

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


# --- property: to_dict / from_dict round trips ----------------------------------------------

FAMILIES = ["resnet20", "wrn-16-2", "resnet18", "densenet-bc-40"]
numbers = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(max_size=12)


@st.composite
def specs(draw: st.DrawFn) -> WidthSpec:
    base = full_spec(draw(st.sampled_from(FAMILIES)), num_classes=draw(st.integers(1, 1000)),
                     in_channels=draw(st.integers(1, 4)))
    return base.with_widths({s: draw(st.integers(1, w)) for s, w in base.widths.items()})


@settings(max_examples=40, deadline=None)
@given(specs())
def test_widthspec_round_trip_property(spec: WidthSpec) -> None:
    assert WidthSpec.from_dict(spec.to_dict()) == spec
    assert WidthSpec.from_json(spec.to_json()) == spec


