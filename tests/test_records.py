"""perfstudent.records: the one rule (schema name, newer refused, older migrated, unknown keys
refused, typed sub-records) on a toy record and on the formats users see."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from perfstudent.errors import InputError
from perfstudent.records import Record, parse_schema


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


