"""Width-parametrised student families, WidthSpec and ConvShape enumeration.

Importing this package registers every built-in family (each family module
registers itself when imported; the registry imports none of them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from perfstudent.students import densenet, resnet_cifar, resnet_imagenet, wrn  # noqa: F401  (register)
from perfstudent.students.family import Family, Layer
from perfstudent.students.registry import family_names, get_family
from perfstudent.students.widthspec import WidthSpec

if TYPE_CHECKING:
    from torch import nn

    from perfstudent.convshape import ConvShape

__all__ = [
    "Family",
    "Layer",
    "WidthSpec",
    "build",
    "family_names",
    "family_shapes",
    "full_spec",
    "get_family",
    "network_layers",
]


def full_spec(family: str, input_size: int | None = None, in_channels: int | None = None,
              num_classes: int | None = None) -> WidthSpec:
    """The unpruned WidthSpec of ``family`` (family defaults for what is not given)."""
    return get_family(family).full_spec(input_size, in_channels, num_classes)


def build(spec: WidthSpec) -> nn.Module:
    """Build the network ``spec`` describes (randomly initialised)."""
    return get_family(spec.family).build(spec)


def network_layers(spec: WidthSpec, batch: int = 1) -> list[Layer]:
    """Every conv and linear layer of ``build(spec)``, in execution order (docs/design.md, glossary)."""
    return get_family(spec.family).layers(spec, batch)


def family_shapes(family: str, input_size: int | None = None, in_channels: int | None = None,
                  num_classes: int | None = None, batch: int = 1,
                  widths: dict[str, list[int]] | None = None) -> list[ConvShape]:
    """Every distinct ConvShape any WidthSpec of ``family`` can produce.

    Each slot at every width 1..full (or the widths given per slot), plus the
    fixed layers; identical shapes are listed once, in first-seen order.
    """
    fam = get_family(family)
    spec = fam.full_spec(input_size, in_channels, num_classes)
    seen: dict[ConvShape, None] = {}
    for layer in fam.layers(spec, batch):
        if layer.slot is None:
            seen.setdefault(layer.shape)
    for slot, full in spec.widths.items():
        for width in (widths or {}).get(slot, range(1, full + 1)):
            for layer in fam.slot_layers(spec, slot, width, batch):
                seen.setdefault(layer.shape)
    return list(seen)
