"""ImageNet-style ResNet-18/34 with torchvision's parameter names.

A 7x7/2 stem with max-pool, four stages of 64/128/256/512 channels, 224x224
input by default. At full width ``model.load_state_dict(torchvision_sd,
strict=True)`` works.
"""

from __future__ import annotations

from perfstudent.students.registry import register_family
from perfstudent.students.resnet import ResNetFamily


class ImageNetResNet(ResNetFamily):
    stem_channels = 64
    stem_kernel = 7
    stem_stride = 2
    maxpool = True
    stage_channels = (64, 128, 256, 512)
    default_input_size = 224
    default_num_classes = 1000
    min_input_size = 32


register_family(ImageNetResNet("resnet18", (2, 2, 2, 2)))
register_family(ImageNetResNet("resnet34", (3, 4, 6, 3)))
