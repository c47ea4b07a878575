"""WidthSpec: a family plus the width of every prunable slot (docs/design.md, glossary).

WidthSpec is the currency between planner, profiler, builder and distiller.
It serialises to readable JSON::

    {"schema": "perfstudent.widthspec/1", "family": "resnet20",
     "input_size": 32, "in_channels": 3, "num_classes": 10,
     "widths": {"layer1.0": 16, "layer1.1": 9, ...}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perfstudent.errors import SpecError
from perfstudent.records import Record
from perfstudent.students.registry import get_family

SCHEMA = "perfstudent.widthspec/1"


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SpecError(f"{name} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class WidthSpec(Record):
    """The width of every prunable slot of one network of a family.

    Construct through :func:`perfstudent.students.full_spec` or
    :meth:`from_dict`/:meth:`load`; all of them validate against the family.
    A :class:`~perfstudent.records.Record` (``perfstudent.widthspec/1``).
    """

    SCHEMA = SCHEMA
    ERROR = SpecError

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

    @classmethod
    def what(cls) -> str:
        return "spec file"

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> WidthSpec:
        """The one rule of :mod:`perfstudent.records`, with two allowances: a plan's dict
        gives its ``spec``, and a hand-written spec may leave out the schema."""
        if isinstance(data, dict) and isinstance(data.get("spec"), dict) and "family" not in data:
            data = data["spec"]  # a Plan carries its WidthSpec under "spec"
        if isinstance(data, dict) and "schema" not in data:
            data = {"schema": cls.SCHEMA, **data}
        return super().from_dict(data, where)
