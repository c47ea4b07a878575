"""Wide ResNets ``wrn-D-K`` (Zagoruyko & Komodakis 2016), pre-activation blocks.

n = (D - 4) / 6 blocks per stage, stage widths 16K/32K/64K after a 16-channel
stem. A block is BN-ReLU-conv3x3-BN-ReLU-conv3x3 (+ shortcut); its prunable
slot is the interior width (conv1 out = conv2 in), whose activation is the
output of ``relu2``. Dropout is not used (the anchors' recipes train without).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from perfstudent.errors import SpecError
from perfstudent.students.family import Family, Layer, ShapeWalker
from perfstudent.students.registry import register_family, register_pattern

if TYPE_CHECKING:
    from perfstudent.students.widthspec import WidthSpec


class PreActBlock(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU(inplace=True)  # its output is the slot activation
        self.conv2 = nn.Conv2d(mid, cout, 3, 1, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(pre))))
        # Zagoruyko's code feeds the pre-activation to a projection shortcut.
        identity = x if self.shortcut is None else self.shortcut(pre)
        return out + identity


class WideResNet(nn.Module):
    def __init__(self, depth_blocks: int, k: int, spec: WidthSpec) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(spec.in_channels, 16, 3, 1, 1, bias=False)
        cin = 16
        for i, channels in enumerate((16 * k, 32 * k, 64 * k), start=1):
            blocks = []
            for b in range(depth_blocks):
                stride = 2 if i > 1 and b == 0 else 1
                blocks.append(PreActBlock(cin, spec.widths[f"layer{i}.{b}"], channels, stride))
                cin = channels
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self.bn = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, spec.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for name in ("layer1", "layer2", "layer3"):
            x = getattr(self, name)(x)
        x = self.avgpool(self.relu(self.bn(x)))
        return self.fc(torch.flatten(x, 1))


class WRNFamily(Family):
    block_kind = "PreActBlock"

    def __init__(self, depth: int, k: int) -> None:
        if depth < 10 or (depth - 4) % 6:
            raise SpecError(f"wrn depth must be 6n+4 with n >= 1, got {depth}")
        if k < 1:
            raise SpecError(f"wrn widen factor must be >= 1, got {k}")
        self.name = f"wrn-{depth}-{k}"
        self.n = (depth - 4) // 6
        self.k = k

    def full_widths(self) -> dict[str, int]:
        return {f"layer{i}.{b}": c * self.k
                for i, c in enumerate((16, 32, 64), start=1) for b in range(self.n)}

    def build(self, spec: WidthSpec) -> nn.Module:
        return WideResNet(self.n, self.k, spec)

    def layers(self, spec: WidthSpec, batch: int = 1) -> list[Layer]:
        walker = ShapeWalker(spec.in_channels, spec.input_size, batch)
        walker.conv("conv1", 16, 3, epilogue="none", role="stem")
        for i, channels in enumerate((16 * self.k, 32 * self.k, 64 * self.k), start=1):
            for b in range(self.n):
                path, stride = f"layer{i}.{b}", 2 if i > 1 and b == 0 else 1
                cin, size = walker.c, walker.h
                walker.conv(f"{path}.conv1", spec.widths[path], 3, stride, epilogue="bn+relu",
                            role="slot", slot=path)
                walker.conv(f"{path}.conv2", channels, 3, 1, epilogue="add", role="slot", slot=path)
                if stride != 1 or cin != channels:
                    out = (walker.c, walker.h, walker.w)
                    walker.c, walker.h, walker.w = cin, size, size
                    walker.conv(f"{path}.shortcut", channels, 1, stride, 0, epilogue="none",
                                role="downsample")
                    walker.c, walker.h, walker.w = out
        walker.linear("fc", spec.num_classes)
        return walker.layers

    def block_output(self, spec: WidthSpec, slot: str, batch: int = 1) -> tuple[int, int, int, int]:
        conv2 = [layer.shape for layer in self.layers(spec, batch) if layer.slot == slot][-1]
        return (batch, conv2.cout, conv2.out_height, conv2.out_width)

    def slot_block(self, spec: WidthSpec, slot: str) -> nn.Module:
        conv1, conv2 = (layer.shape for layer in self.layers(spec) if layer.slot == slot)
        return PreActBlock(conv1.cin, spec.widths[slot], conv2.cout, conv1.stride)

    def stage_paths(self) -> tuple[str, ...]:
        return ("layer1", "layer2", "layer3")

    def slot_activation_path(self, slot: str) -> str:
        return f"{slot}.relu2"


for _depth, _k in ((16, 1), (16, 2), (16, 4), (16, 8), (28, 10), (40, 1), (40, 2), (40, 4)):
    register_family(WRNFamily(_depth, _k))
register_pattern(r"wrn-(\d+)-(\d+)", lambda m: WRNFamily(int(m.group(1)), int(m.group(2))))
