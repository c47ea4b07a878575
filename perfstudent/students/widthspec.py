"""WidthSpec: a family plus the width of every prunable slot (docs/design.md, glossary).

WidthSpec is the currency between planner, profiler, builder and distiller.
It serialises to readable JSON::

    {"schema": "perfstudent.widthspec/1", "family": "resnet20",
     "input_size": 32, "in_channels": 3, "num_classes": 10,
     "widths": {"layer1.0": 16, "layer1.1": 9, ...}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfstudent.errors import SpecError
from perfstudent.students.registry import get_family

SCHEMA = "perfstudent.widthspec/1"
_KEYS = {"schema", "family", "input_size", "in_channels", "num_classes", "widths"}


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"{name} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class WidthSpec:
    """The width of every prunable slot of one network of a family.

    Construct through :func:`perfstudent.students.full_spec` or
    :meth:`from_dict`/:meth:`load`; all of them validate against the family.
    """

    family: str
    input_size: int
    in_channels: int
    num_classes: int
    widths: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fam = get_family(self.family)
        _positive_int("input_size", self.input_size)
        _positive_int("in_channels", self.in_channels)
        _positive_int("num_classes", self.num_classes)
        if self.input_size < fam.min_input_size:
            raise SpecError(
                f"input_size {self.input_size} is too small for {self.family} "
                f"(at least {fam.min_input_size})"
            )
        full = fam.full_widths()
        missing = [s for s in full if s not in self.widths]
        extra = [s for s in self.widths if s not in full]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing slots {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
            if extra:
                parts.append(f"unknown slots {', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}")
            raise SpecError(f"wrong slot set for {self.family}: {'; '.join(parts)}")
        for slot, width in self.widths.items():
            if not isinstance(width, int) or isinstance(width, bool):
                raise SpecError(f"width of slot {slot} must be an integer, got {width!r}")
            if not 1 <= width <= full[slot]:
                raise SpecError(f"width of slot {slot} must be in 1..{full[slot]}, got {width}")
        # Keep the family's slot order so JSON and iteration are stable.
        object.__setattr__(self, "widths", {s: self.widths[s] for s in full})

    def __hash__(self) -> int:
        return hash((self.family, self.input_size, self.in_channels, self.num_classes,
                     tuple(self.widths.items())))

    @property
    def slots(self) -> list[str]:
        return list(self.widths)

    def with_widths(self, widths: dict[str, int]) -> WidthSpec:
        """A copy with some slot widths replaced."""
        return WidthSpec(self.family, self.input_size, self.in_channels, self.num_classes,
                         {**self.widths, **widths})

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "family": self.family,
            "input_size": self.input_size,
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "widths": dict(self.widths),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> WidthSpec:
        if not isinstance(data, dict):
            raise SpecError("a WidthSpec must be a JSON object")
        if "spec" in data and isinstance(data["spec"], dict) and "family" not in data:
            data = data["spec"]  # a Plan carries its WidthSpec under "spec"
        schema = data.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise SpecError(f"unsupported WidthSpec schema {schema!r} (expected {SCHEMA!r})")
        missing = [k for k in ("family", "input_size", "in_channels", "num_classes", "widths")
                   if k not in data]
        if missing:
            raise SpecError(f"WidthSpec is missing {', '.join(missing)}")
        unknown = set(data) - _KEYS
        if unknown:
            raise SpecError(f"WidthSpec has unknown keys {', '.join(sorted(unknown))}")
        if not isinstance(data["family"], str):
            raise SpecError(f"family must be a string, got {data['family']!r}")
        if not isinstance(data["widths"], dict):
            raise SpecError("widths must be an object mapping slot names to widths")
        return cls(data["family"], data["input_size"], data["in_channels"],
                   data["num_classes"], dict(data["widths"]))

    @classmethod
    def from_json(cls, text: str) -> WidthSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"malformed JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> WidthSpec:
        from perfstudent.io import read_text

        path = Path(path)
        text = read_text(path, "spec file", SpecError)
        try:
            return cls.from_json(text)
        except SpecError as exc:
            raise SpecError(f"{path}: {exc}") from None

    def save(self, path: str | Path) -> None:
        from perfstudent.io import atomic_write_text

        atomic_write_text(Path(path), self.to_json())
