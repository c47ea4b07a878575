"""WidthSpec: JSON round trip and every validation error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfstudent.errors import InputError, SpecError
from perfstudent.students import WidthSpec, full_spec


def test_round_trip_file(tmp_path: Path) -> None:
    spec = full_spec("resnet20").with_widths({"layer1.0": 3, "layer3.2": 17})
    path = tmp_path / "spec.json"
    spec.save(path)
    data = json.loads(path.read_text())
    assert data["schema"] == "perfstudent.widthspec/1"
    assert data["family"] == "resnet20" and data["widths"]["layer1.0"] == 3
    again = WidthSpec.load(path)
    assert again == spec and hash(again) == hash(spec)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_round_trip_property(data: st.DataObject) -> None:
    family = data.draw(st.sampled_from(["resnet20", "wrn-16-2", "resnet18", "densenet-bc-40"]))
    base = full_spec(family, num_classes=data.draw(st.integers(1, 1000)),
                     in_channels=data.draw(st.integers(1, 4)))
    widths = {s: data.draw(st.integers(1, w)) for s, w in base.widths.items()}
    spec = base.with_widths(widths)
    assert WidthSpec.from_json(spec.to_json()) == spec


def _spec_dict(**changes: object) -> dict:
    d = full_spec("resnet20").to_dict()
    d.update(changes)
    return d


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_spec_dict(family="resnet21"), "unknown family"),
        (_spec_dict(family="wrn-17-2"), r"6n\+4"),
        (_spec_dict(widths={"layer1.0": 16}), "missing slots"),
        (_spec_dict(widths={**full_spec("resnet20").widths, "layer9.0": 3}), "unknown slots"),
        (_spec_dict(widths={**full_spec("resnet20").widths, "layer1.0": 0}), "in 1..16"),
        (_spec_dict(widths={**full_spec("resnet20").widths, "layer3.0": 65}), "in 1..64"),
        (_spec_dict(widths={**full_spec("resnet20").widths, "layer1.0": 2.5}), "must be an integer"),
        (_spec_dict(widths={**full_spec("resnet20").widths, "layer1.0": "8"}), "must be an integer"),
        (_spec_dict(widths={**full_spec("resnet20").widths, "layer1.0": True}), "must be an integer"),
        (_spec_dict(input_size=0), "input_size"),
        (_spec_dict(input_size=4), "too small"),
        (_spec_dict(num_classes=-1), "num_classes"),
        (_spec_dict(in_channels=1.0), "in_channels"),
        (_spec_dict(schema="perfstudent.widthspec/99"), "written by a newer perfstudent"),
        (_spec_dict(schema="perfstudent.plan/1"), "schema is 'perfstudent.plan/1'"),
        (_spec_dict(extra=1), "unknown keys"),
        ({"family": "resnet20"}, "missing"),
        ([1, 2], "JSON object"),
        (_spec_dict(widths=[16]), "widths must be an object"),
    ],
)
def test_invalid_specs_raise_spec_error(data: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        WidthSpec.from_dict(data)


def test_spec_error_is_an_input_error() -> None:
    assert issubclass(SpecError, InputError) and SpecError.exit_code == 2


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not found"):
        WidthSpec.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        WidthSpec.load(bad)
    with pytest.raises(SpecError, match="cannot read"):
        WidthSpec.load(tmp_path)


def test_plan_file_carries_a_spec() -> None:
    spec = full_spec("resnet20")
    assert WidthSpec.from_dict({"strategy": "perf", "spec": spec.to_dict()}) == spec
