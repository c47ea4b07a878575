"""The Family interface: what a width-parametrised architecture family provides.

A family knows its prunable slots and their full widths, builds a network from
a WidthSpec, lists every conv and linear layer of that network as a
:class:`Layer` with its ConvShape, and describes the block that holds each slot
(:class:`~perfstudent.blockshape.BlockShape`, :class:`~perfstudent.blockshape.Chain`).
Families register themselves with :mod:`perfstudent.students.registry` when
their module is imported.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from perfstudent.blockshape import BlockShape, Chain
from perfstudent.convshape import ConvShape
from perfstudent.students.widthspec import WidthSpec

if TYPE_CHECKING:
    from torch import nn

#: Roles of layers. ``slot`` layers change with a slot's width; all others are fixed.
ROLES = ("stem", "slot", "downsample", "transition", "head")


@dataclass(frozen=True)
class Layer:
    """One conv/linear layer of a built network.

    ``path`` is the module path in the built model, ``slot`` the prunable slot
    whose width it depends on (``None`` for fixed layers).
    """

    path: str
    shape: ConvShape
    role: str
    slot: str | None = None


class ShapeWalker:
    """Tracks (channels, height, width) while a family lists its layers."""

    def __init__(self, channels: int, size: int, batch: int = 1) -> None:
        self.c, self.h, self.w = channels, size, size
        self.batch = batch
        self.layers: list[Layer] = []

    def conv(self, path: str, cout: int, kernel: int, stride: int = 1, padding: int | None = None,
             *, epilogue: str, role: str, slot: str | None = None, cin: int | None = None,
             advance: bool = True, bias: bool = False) -> ConvShape:
        shape = ConvShape(
            "conv2d", cin or self.c, cout, self.h, self.w, kernel=kernel, stride=stride,
            padding=kernel // 2 if padding is None else padding, bias=bias, epilogue=epilogue,
            batch=self.batch,
        )
        self.layers.append(Layer(path, shape, role, slot))
        if advance:
            self.c, self.h, self.w = cout, shape.out_height, shape.out_width
        return shape

    def pool(self, kernel: int, stride: int, padding: int = 0) -> None:
        self.h = (self.h + 2 * padding - kernel) // stride + 1
        self.w = (self.w + 2 * padding - kernel) // stride + 1

    def linear(self, path: str, cout: int) -> None:
        shape = ConvShape("linear", self.c, cout, 1, 1, bias=True, batch=self.batch)
        self.layers.append(Layer(path, shape, "head"))


class Family(ABC):
    """An architecture family whose prunable slots a WidthSpec sets."""

    name: str
    default_input_size = 32
    default_in_channels = 3
    default_num_classes = 10
    min_input_size = 8

    @abstractmethod
    def full_widths(self) -> dict[str, int]:
        """Slot name -> full (unpruned) width, in network order."""

    @abstractmethod
    def build(self, spec: WidthSpec) -> nn.Module:
        """The network at the widths of ``spec`` (randomly initialised)."""

    @abstractmethod
    def layers(self, spec: WidthSpec, batch: int = 1) -> list[Layer]:
        """Every conv and linear layer of ``build(spec)``, in execution order."""

    @abstractmethod
    def stage_paths(self) -> tuple[str, ...]:
        """Module paths whose outputs attention transfer matches (docs/design.md, formulas)."""

    @abstractmethod
    def slot_activation_path(self, slot: str) -> str:
        """Module path whose output is the slot's activation after its BN+ReLU."""

    def slot_layers(self, spec: WidthSpec, slot: str, width: int, batch: int = 1) -> list[Layer]:
        """The layers of ``slot`` when it has ``width`` channels (others as in ``spec``)."""
        probe = spec.with_widths({slot: width})
        return [layer for layer in self.layers(probe, batch) if layer.slot == slot]

    #: Class name of the module that holds one slot (a LUT row's ``BlockShape.kind``).
    block_kind = "Block"

    def block_layers(self, spec: WidthSpec, slot: str, batch: int = 1) -> list[Layer]:
        """Every layer inside the block of ``slot`` (the slot's own and the block's shortcut)."""
        return [layer for layer in self.layers(spec, batch) if layer.path.startswith(slot + ".")]

    def block_input(self, spec: WidthSpec, slot: str, batch: int = 1) -> tuple[int, int, int, int]:
        """``(batch, C, H, W)`` of the tensor entering the block of ``slot``."""
        first = next(layer.shape for layer in self.layers(spec, batch) if layer.slot == slot)
        return (batch, first.cin, first.height, first.width)

    def slot_block(self, spec: WidthSpec, slot: str) -> nn.Module:
        """The block of ``slot`` alone, at ``spec``'s width (randomly initialised).

        The default builds the whole network and takes the block out; families
        override it to build only the block.
        """
        return self.build(spec).get_submodule(slot)

    def block_output(self, spec: WidthSpec, slot: str, batch: int = 1) -> tuple[int, int, int, int]:
        """``(batch, C, H, W)`` of the block's output (the default runs the block once)."""
        import torch

        with torch.no_grad():
            out = self.slot_block(spec, slot).eval()(torch.zeros(*self.block_input(spec, slot, batch)))
        n, c, h, w = out.shape
        return (int(n), int(c), int(h), int(w))

    def block_shapes(self, spec: WidthSpec, batch: int = 1) -> dict[str, BlockShape]:
        """Each slot's :class:`BlockShape` at ``spec``'s widths."""
        full = self.full_spec(spec.input_size, spec.in_channels, spec.num_classes)
        return {slot: BlockShape(self.block_kind,
                                 tuple(layer.shape for layer in self.block_layers(full, slot, batch)),
                                 full.widths[slot], spec.widths[slot]) for slot in spec.widths}

    def slot_neighbours(self, spec: WidthSpec, batch: int = 1) -> dict[str, tuple[str | None, str | None]]:
        """Each slot's previous and next slot in the network, where their tensors connect
        (the previous block's output is this block's input; None at the stem, the head, or a
        transition layer between them)."""
        slots = list(spec.widths)
        io = {s: (self.block_input(spec, s, batch), self.block_output(spec, s, batch)) for s in slots}
        out: dict[str, tuple[str | None, str | None]] = {}
        for i, slot in enumerate(slots):
            before = slots[i - 1] if i > 0 and io[slots[i - 1]][1] == io[slot][0] else None
            after = slots[i + 1] if i + 1 < len(slots) and io[slot][1] == io[slots[i + 1]][0] else None
            out[slot] = (before, after)
        return out

    def slot_chains(self, spec: WidthSpec, batch: int = 1) -> dict[str, Chain]:
        """Each slot's :class:`Chain`: its block at ``spec``'s width between its neighbours
        (:meth:`slot_neighbours`) at full width."""
        full = self.full_spec(spec.input_size, spec.in_channels, spec.num_classes)
        blocks = self.block_shapes(full, batch)
        chains = {}
        for slot, (before, after) in self.slot_neighbours(full, batch).items():
            chains[slot] = Chain(blocks[slot].at(spec.widths[slot]),
                                 None if before is None else blocks[before],
                                 None if after is None else blocks[after])
        return chains

    def full_spec(self, input_size: int | None = None, in_channels: int | None = None,
                  num_classes: int | None = None) -> WidthSpec:
        return WidthSpec(
            self.name,
            self.default_input_size if input_size is None else input_size,
            self.default_in_channels if in_channels is None else in_channels,
            self.default_num_classes if num_classes is None else num_classes,
            self.full_widths(),
        )
