"""BlockShape and Chain: the keys of the latency table.

A row is what the *block* that holds a prunable slot costs inside a network
(the slot's convolutions, the block's shortcut and its fused epilogues), not
what its layers cost one by one in isolation: at the setting users deploy, a
layer alone is wrapped in layout reorders and misses the fusions and the
layout changes it gets inside a network (docs/profiler.md has the
measurements). The block is the smallest unit whose input and output do not
depend on the slot width.

A block's cost depends on its neighbours too (ONNX Runtime at ``all`` changes
the tensor layout around a block whose width it cannot run in channel blocks),
so a row is timed in a :class:`Chain`: the block between the blocks that
surround it in the network, at their full width.
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
    but ``width``) and ``full`` the slot's full width.
    """

    kind: str
    layers: tuple[ConvShape, ...]
    full: int
    width: int

    def __post_init__(self) -> None:
        if not self.kind or not isinstance(self.kind, str):
            raise InputError(f"BlockShape.kind must be a class name, got {self.kind!r}")
        if not self.layers or not all(isinstance(s, ConvShape) for s in self.layers):
            raise InputError("BlockShape.layers must be a non-empty tuple of ConvShapes")
        for name in ("full", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"BlockShape.{name} must be a positive integer, got {value!r}")
        if self.width > self.full:
            raise InputError(f"BlockShape.width {self.width} exceeds the full width {self.full}")

    def at(self, width: int) -> BlockShape:
        return dataclasses.replace(self, width=width)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layers": [s.to_dict() for s in self.layers], "full": self.full,
                "width": self.width}

    @classmethod
    def from_dict(cls, data: Any) -> BlockShape:
        if not isinstance(data, dict):
            raise InputError(f"a BlockShape is a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"kind", "layers", "full", "width"}
        if unknown:
            raise InputError(f"unknown BlockShape fields: {', '.join(sorted(unknown))}")
        layers = data.get("layers")
        if not isinstance(layers, list):
            raise InputError("BlockShape.layers must be a list of ConvShapes")
        try:
            return cls(str(data["kind"]), tuple(ConvShape.from_dict(s) for s in layers),
                       data["full"], data["width"])
        except KeyError as exc:
            raise InputError(f"BlockShape lacks the field {exc}") from None

    def label(self) -> str:
        """Short human form, e.g. ``BasicBlock 32>[17/32]>32 @16x16 s1``."""
        first, second = self.layers[0], self.layers[1] if len(self.layers) > 1 else self.layers[0]
        return (f"{self.kind} {first.cin}>[{self.width}/{self.full}]>{second.cout} "
                f"@{first.height}x{first.width} s{first.stride}")

    def __str__(self) -> str:
        return self.label()


def _optional(data: Any) -> BlockShape | None:
    return None if data is None else BlockShape.from_dict(data)


@dataclass(frozen=True, order=True)
class Chain:
    """What one LUT row times: ``block`` between ``before`` and ``after`` (full width; None: none).

    The neighbours are the blocks around the slot in the network, when their
    tensors connect (the previous block's output is this block's input). A
    ``Chain(block)`` without neighbours is the block alone.
    """

    block: BlockShape
    before: BlockShape | None = None
    after: BlockShape | None = None

    @property
    def alone(self) -> bool:
        return self.before is None and self.after is None

    def at(self, width: int) -> Chain:
        return dataclasses.replace(self, block=self.block.at(width))

    def context(self) -> Chain:
        """The same chain with the block at full width: the identity of its series over widths."""
        return self.at(self.block.full)

    def to_dict(self) -> dict[str, Any]:
        return {"block": self.block.to_dict(),
                "before": None if self.before is None else self.before.to_dict(),
                "after": None if self.after is None else self.after.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> Chain:
        if not isinstance(data, dict) or set(data) != {"block", "before", "after"}:
            raise InputError("a Chain is a JSON object with the fields block, before and after")
        return cls(BlockShape.from_dict(data["block"]), _optional(data["before"]),
                   _optional(data["after"]))

    def key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def label(self) -> str:
        if self.alone:
            return f"{self.block.label()} alone"
        return f"{self.block.label()} between {self.before or 'input'} and {self.after or 'output'}"

    def __str__(self) -> str:
        return self.label()
