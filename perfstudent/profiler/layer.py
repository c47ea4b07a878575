"""One layer as a module: a conv or linear with its fused epilogue (the isolated-row unit)."""

from __future__ import annotations

import torch
from torch import nn

from perfstudent.convshape import ConvShape


class ShapeModule(nn.Module):
    """One ConvShape: conv2d/linear with a bias when BN is folded, then add and ReLU."""

    def __init__(self, shape: ConvShape) -> None:
        super().__init__()
        bias = shape.bias or "bn" in shape.epilogue
        self.op: nn.Module
        if shape.op == "linear":
            self.op = nn.Linear(shape.cin, shape.cout, bias=bias)
        else:
            self.op = nn.Conv2d(shape.cin, shape.cout, shape.kernel, shape.stride, shape.padding,
                                groups=shape.groups, bias=bias)
        self.add = "add" in shape.epilogue
        self.relu = "relu" in shape.epilogue

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        out = self.op(x)
        if self.add:  # a flag, not ``residual is not None``: torch.fx traces this module
            out = out + residual
        return torch.relu(out) if self.relu else out


def shape_input_shapes(shape: ConvShape) -> list[tuple[int, ...]]:
    """Input shapes of :class:`ShapeModule`: x, and the residual for ``add`` epilogues."""
    if shape.op == "linear":
        return [(shape.batch, shape.cin)]
    inputs: list[tuple[int, ...]] = [(shape.batch, shape.cin, shape.height, shape.width)]
    if "add" in shape.epilogue:
        inputs.append((shape.batch, shape.cout, shape.out_height, shape.out_width))
    return inputs
