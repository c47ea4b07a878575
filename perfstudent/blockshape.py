"""BlockShape: the key of one latency-table row, a prunable slot's whole block at one width.

A row is what the *block* that holds a slot costs inside a network (the
slot's convolutions, the block's shortcut and its fused epilogues), not what
its layers cost one by one in isolation: at the setting users deploy, a layer
alone is wrapped in layout reorders and misses the fusions it gets inside a
network (docs/profiler.md has the measurements). The block is the smallest
unit whose input and output do not depend on the slot width, so blocks add
up to a network with one constant (the overhead term: stem, head, the graph's
own entry and exit).

Identical blocks share a row, across families too, when they were measured in
the same *run*: ``run`` is how many identical blocks follow one another in the
family (a ResNet stage's identity blocks), and the chain a row is timed in has
that many copies, so the row sees the weights and activations of a stage, not
of one block (docs/profiler.md, "in-context rows").
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from perfstudent.convshape import ConvShape
from perfstudent.errors import InputError


@dataclass(frozen=True, order=True)
class BlockShape:
    """One slot block at slot width ``width``.

    ``kind`` is the block's module class (``BasicBlock``, ``PreActBlock``,
    ``Bottleneck``), ``layers`` the block's conv and linear layers at the slot's
    *full* width (so the series of one block over all widths shares everything
    but ``width``), ``full`` the slot's full width and ``run`` the number of
    identical blocks in a row in the family (1 for a block that changes the
    stream's shape, such as a downsampling block).
    """

    kind: str
    layers: tuple[ConvShape, ...]
    full: int
    width: int
    run: int = 1

    def __post_init__(self) -> None:
        if not self.kind or not isinstance(self.kind, str):
            raise InputError(f"BlockShape.kind must be a class name, got {self.kind!r}")
        if not self.layers or not all(isinstance(s, ConvShape) for s in self.layers):
            raise InputError("BlockShape.layers must be a non-empty tuple of ConvShapes")
        for name in ("full", "width", "run"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"BlockShape.{name} must be a positive integer, got {value!r}")
        if self.width > self.full:
            raise InputError(f"BlockShape.width {self.width} exceeds the full width {self.full}")

    def series(self) -> BlockShape:
        """The same block at full width: the identity of its series over ``width``."""
        return dataclasses.replace(self, width=self.full)

    def at(self, width: int) -> BlockShape:
        return dataclasses.replace(self, width=width)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layers": [s.to_dict() for s in self.layers], "full": self.full,
                "width": self.width, "run": self.run}

    @classmethod
    def from_dict(cls, data: Any) -> BlockShape:
        if not isinstance(data, dict):
            raise InputError(f"a BlockShape is a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"kind", "layers", "full", "width", "run"}
        if unknown:
            raise InputError(f"unknown BlockShape fields: {', '.join(sorted(unknown))}")
        layers = data.get("layers")
        if not isinstance(layers, list):
            raise InputError("BlockShape.layers must be a list of ConvShapes")
        try:
            return cls(str(data["kind"]), tuple(ConvShape.from_dict(s) for s in layers),
                       data["full"], data["width"], data.get("run", 1))
        except KeyError as exc:
            raise InputError(f"BlockShape lacks the field {exc}") from None

    def key(self) -> str:
        """Canonical, stable text form (a database key)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def label(self) -> str:
        """Short human form, e.g. ``BasicBlock 32>[17/32]>32 @16x16 s1 run2``."""
        first, second = self.layers[0], self.layers[1] if len(self.layers) > 1 else self.layers[0]
        return (f"{self.kind} {first.cin}>[{self.width}/{self.full}]>{second.cout} "
                f"@{first.height}x{first.width} s{first.stride} run{self.run}")

    def __str__(self) -> str:
        return self.label()


@dataclass(frozen=True, order=True)
class Chain:
    """What one LUT row times: ``copies`` blocks of ``block`` one after another.

    A block that keeps its input's shape (a ResNet identity block) is timed in
    two chains, one block and ``max(2, run)`` blocks; the difference per extra
    block is the block's cost inside a run of its kind, with the chain's own
    entry and exit (graph input and output, layout reorders) cancelled. A block
    that changes the shape (downsampling) can only be timed alone.
    """

    block: BlockShape
    copies: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.copies, int) or isinstance(self.copies, bool) or self.copies < 1:
            raise InputError(f"Chain.copies must be a positive integer, got {self.copies!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"block": self.block.to_dict(), "copies": self.copies}

    @classmethod
    def from_dict(cls, data: Any) -> Chain:
        if not isinstance(data, dict) or set(data) != {"block", "copies"}:
            raise InputError("a Chain is a JSON object with the fields block and copies")
        return cls(BlockShape.from_dict(data["block"]), data["copies"])

    def key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def __str__(self) -> str:
        return f"{self.block.label()} x{self.copies}"
