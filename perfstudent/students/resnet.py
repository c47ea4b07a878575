"""Residual networks with basic blocks: CIFAR-style and ImageNet-style.

The prunable slot of a basic block is its interior width (conv1 out = conv2
in; pytorch-prunes convention). Module and parameter names at full width equal
torchvision's ``ResNet``/``BasicBlock`` (the extra ReLU modules hold no
parameters), so a torchvision checkpoint loads with ``strict=True``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from perfstudent.students.family import Family, Layer, ShapeWalker

if TYPE_CHECKING:
    from perfstudent.students.widthspec import WidthSpec


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN (+ shortcut) -ReLU with a prunable interior."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act1 = nn.ReLU(inplace=True)  # its output is the slot activation
        self.conv2 = nn.Conv2d(mid, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act2(out + identity)


def walk_basic_block(walker: ShapeWalker, path: str, mid: int, cout: int, stride: int) -> None:
    """Append a BasicBlock's layers (conv1, conv2, downsample) to ``walker``."""
    cin, h = walker.c, walker.h
    walker.conv(f"{path}.conv1", mid, 3, stride, epilogue="bn+relu", role="slot", slot=path)
    walker.conv(f"{path}.conv2", cout, 3, 1, epilogue="bn+add+relu", role="slot", slot=path)
    if stride != 1 or cin != cout:
        out_c, out_h, out_w = walker.c, walker.h, walker.w
        walker.c, walker.h, walker.w = cin, h, h
        walker.conv(f"{path}.downsample.0", cout, 1, stride, 0, epilogue="bn", role="downsample")
        walker.c, walker.h, walker.w = out_c, out_h, out_w


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions (fan out), BN weight 1 and bias 0, as torchvision."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ResNet(nn.Module):
    """A stem, stages of basic blocks, global average pooling and a linear head."""

    def __init__(self, stem_channels: int, in_channels: int,
                 stem_kernel: int, stem_stride: int, stages: list[tuple[int, int, int]],
                 widths: dict[str, int], num_classes: int, maxpool: bool) -> None:
        super().__init__()
        pad = stem_kernel // 2
        self.conv1 = nn.Conv2d(in_channels, stem_channels, stem_kernel, stem_stride, pad, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if maxpool else nn.Identity()
        cin = stem_channels
        for i, (channels, blocks, stride) in enumerate(stages, start=1):
            layer = []
            for b in range(blocks):
                layer.append(BasicBlock(cin, widths[f"layer{i}.{b}"], channels, stride if b == 0 else 1))
                cin = channels
            self.add_module(f"layer{i}", nn.Sequential(*layer))
        self.num_stages = len(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ResNetFamily(Family):
    """Basic-block ResNets; subclasses fix the stem and the stage plan."""

    block_kind = "BasicBlock"
    stem_channels = 16
    stem_kernel = 3
    stem_stride = 1
    maxpool = False
    stage_channels: tuple[int, ...] = (16, 32, 64)
    blocks: tuple[int, ...] = (3, 3, 3)

    def __init__(self, name: str, blocks: tuple[int, ...]) -> None:
        self.name = name
        self.blocks = blocks

    def _stages(self) -> list[tuple[int, int, int]]:
        return [(c, n, 1 if i == 0 else 2)
                for i, (c, n) in enumerate(zip(self.stage_channels, self.blocks, strict=False))]

    def full_widths(self) -> dict[str, int]:
        return {f"layer{i}.{b}": c
                for i, (c, n, _) in enumerate(self._stages(), start=1) for b in range(n)}

    def build(self, spec: WidthSpec) -> nn.Module:
        return ResNet(self.stem_channels, spec.in_channels, self.stem_kernel,
                      self.stem_stride, self._stages(), spec.widths, spec.num_classes,
                      self.maxpool)

    def layers(self, spec: WidthSpec, batch: int = 1) -> list[Layer]:
        walker = ShapeWalker(spec.in_channels, spec.input_size, batch)
        walker.conv("conv1", self.stem_channels, self.stem_kernel, self.stem_stride,
                    epilogue="bn+relu", role="stem")
        if self.maxpool:
            walker.pool(3, 2, 1)
        for i, (channels, n, stride) in enumerate(self._stages(), start=1):
            for b in range(n):
                path = f"layer{i}.{b}"
                walk_basic_block(walker, path, spec.widths[path], channels, stride if b == 0 else 1)
        walker.linear("fc", spec.num_classes)
        return walker.layers

    def block_output(self, spec: WidthSpec, slot: str, batch: int = 1) -> tuple[int, int, int, int]:
        conv2 = [layer.shape for layer in self.layers(spec, batch) if layer.slot == slot][-1]
        return (batch, conv2.cout, conv2.out_height, conv2.out_width)

    def slot_block(self, spec: WidthSpec, slot: str) -> nn.Module:
        conv1, conv2 = (layer.shape for layer in self.layers(spec) if layer.slot == slot)
        block = BasicBlock(conv1.cin, spec.widths[slot], conv2.cout, conv1.stride)
        init_weights(block)
        return block

    def stage_paths(self) -> tuple[str, ...]:
        return tuple(f"layer{i}" for i in range(1, len(self.blocks) + 1))

    def slot_activation_path(self, slot: str) -> str:
        return f"{slot}.act1"
