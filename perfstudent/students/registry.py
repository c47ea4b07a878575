"""The architecture-family registry (timm-style).

A family module registers its :class:`~perfstudent.students.family.Family`
instances when it is imported (``perfstudent.students`` imports every built-in
family module); the registry itself imports no family.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from perfstudent.errors import SpecError

if TYPE_CHECKING:
    from perfstudent.students.family import Family

_FAMILIES: dict[str, Family] = {}
_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Family]]] = []


def register_family(family: Family) -> Family:
    """Register a family instance under its name (an error on a duplicate)."""
    if family.name in _FAMILIES:
        raise ValueError(f"family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def register_pattern(pattern: str, factory: Callable[[re.Match[str]], Family]) -> None:
    """Register a parametric family name, e.g. ``wrn-(\\d+)-(\\d+)``."""
    _PATTERNS.append((re.compile(pattern), factory))


def get_family(name: str) -> Family:
    if name in _FAMILIES:
        return _FAMILIES[name]
    for pattern, factory in _PATTERNS:
        match = pattern.fullmatch(name)
        if match:
            family = factory(match)  # raises SpecError for invalid parameters
            _FAMILIES[name] = family
            return family
    raise SpecError(f"unknown family {name!r}; known: {', '.join(family_names())}")


def family_names() -> list[str]:
    return list(_FAMILIES)


def iter_families() -> Iterator[Family]:
    yield from list(_FAMILIES.values())

