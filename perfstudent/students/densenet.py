"""DenseNet-BC (Huang et al. 2017) for CIFAR-style inputs: ``densenet-bc-100``.

Three dense blocks of n = (depth - 4) / 6 bottlenecks (BN-ReLU-conv1x1(4k)-
BN-ReLU-conv3x3(k), output concatenated), transitions that halve channels and
resolution, growth k = 12. The prunable slot of a bottleneck is its 1x1 output
(= the 3x3 input); its activation is the output of ``relu2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from perfstudent.students.family import Family, Layer, ShapeWalker
from perfstudent.students.registry import register_family

if TYPE_CHECKING:
    from perfstudent.students.widthspec import WidthSpec


class Bottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU(inplace=True)  # its output is the slot activation
        self.conv2 = nn.Conv2d(mid, growth, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu2(self.bn2(self.conv1(self.relu1(self.bn1(x))))))
        return torch.cat([x, out], 1)


class Transition(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.relu(self.bn(x))))


class DenseNet(nn.Module):
    def __init__(self, family: DenseNetFamily, spec: WidthSpec) -> None:
        super().__init__()
        k = family.growth
        channels = 2 * k
        self.conv1 = nn.Conv2d(spec.in_channels, channels, 3, 1, 1, bias=False)
        for i in range(1, 4):
            layers = []
            for b in range(family.n):
                layers.append(Bottleneck(channels, spec.widths[f"dense{i}.{b}"], k))
                channels += k
            self.add_module(f"dense{i}", nn.Sequential(*layers))
            if i < 3:
                self.add_module(f"trans{i}", Transition(channels, channels // 2))
                channels //= 2
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, spec.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for name in ("dense1", "trans1", "dense2", "trans2", "dense3"):
            x = getattr(self, name)(x)
        x = self.relu(self.bn(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class DenseNetFamily(Family):
    block_kind = "Bottleneck"

    def __init__(self, depth: int, growth: int) -> None:
        self.name = f"densenet-bc-{depth}"
        self.n = (depth - 4) // 6
        self.growth = growth

    def full_widths(self) -> dict[str, int]:
        return {f"dense{i}.{b}": 4 * self.growth for i in range(1, 4) for b in range(self.n)}

    def build(self, spec: WidthSpec) -> nn.Module:
        return DenseNet(self, spec)

    def layers(self, spec: WidthSpec, batch: int = 1) -> list[Layer]:
        k = self.growth
        walker = ShapeWalker(spec.in_channels, spec.input_size, batch)
        walker.conv("conv1", 2 * k, 3, epilogue="none", role="stem")
        for i in range(1, 4):
            for b in range(self.n):
                path = f"dense{i}.{b}"
                cin = walker.c
                walker.conv(f"{path}.conv1", spec.widths[path], 1, 1, 0, epilogue="bn+relu",
                            role="slot", slot=path)
                walker.conv(f"{path}.conv2", k, 3, epilogue="none", role="slot", slot=path)
                walker.c = cin + k  # concatenation
            if i < 3:
                walker.conv(f"trans{i}.conv", walker.c // 2, 1, 1, 0, epilogue="none",
                            role="transition")
                walker.pool(2, 2)
        walker.linear("fc", spec.num_classes)
        return walker.layers

    def block_output(self, spec: WidthSpec, slot: str, batch: int = 1) -> tuple[int, int, int, int]:
        conv1, conv2 = (layer.shape for layer in self.layers(spec, batch) if layer.slot == slot)
        return (batch, conv1.cin + conv2.cout, conv2.out_height, conv2.out_width)

    def slot_block(self, spec: WidthSpec, slot: str) -> nn.Module:
        conv1, conv2 = (layer.shape for layer in self.layers(spec) if layer.slot == slot)
        return Bottleneck(conv1.cin, spec.widths[slot], conv2.cout)

    def stage_paths(self) -> tuple[str, ...]:
        return ("dense1", "dense2", "dense3")

    def slot_activation_path(self, slot: str) -> str:
        return f"{slot}.relu2"


register_family(DenseNetFamily(100, 12))
register_family(DenseNetFamily(40, 12))
