"""CIFAR-style ResNets (He et al. 2016, §4.2): resnet20/32/56/110.

Three stages of 16/32/64 channels with n = (depth - 2) / 6 basic blocks each,
a 3x3 stem and no max-pool; any input size works (global average pooling).
Shortcuts that change shape are 1x1 conv + BN projections (option B, as in
RepDistiller), which adds ~1% parameters over the paper's option A.
"""

from __future__ import annotations

from perfstudent.students.registry import register_family
from perfstudent.students.resnet import ResNetFamily


class CifarResNet(ResNetFamily):
    stem_channels = 16
    stage_channels = (16, 32, 64)


for _depth in (20, 32, 44, 56, 110):
    register_family(CifarResNet(f"resnet{_depth}", ((_depth - 2) // 6,) * 3))
