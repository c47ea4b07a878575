"""ConvShape: the key of one measured layer (docs/design.md, glossary).

Identical layers in different places of a network (or of different networks)
share one ConvShape and therefore one latency-table row, as in HALP.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from perfstudent.errors import InputError

OPS = ("conv2d", "linear")
#: What is fused after the layer. ``bn`` means BatchNorm folded into the
#: weights (so the layer gets a bias); ``add`` is a residual addition of a
#: second input of the output's shape.
EPILOGUES = ("none", "bn", "relu", "bn+relu", "add", "bn+add+relu")


@dataclass(frozen=True, order=True)
class ConvShape:
    """One conv2d or linear layer with its fused epilogue.

    ``height``/``width`` are the layer's *input* spatial size; a linear layer
    has ``height = width = 1`` and ``kernel = 1``.
    """

    op: str
    cin: int
    cout: int
    height: int
    width: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    groups: int = 1
    bias: bool = False
    epilogue: str = "none"
    batch: int = 1
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise InputError(f"unknown op {self.op!r}; expected one of {', '.join(OPS)}")
        if self.epilogue not in EPILOGUES:
            raise InputError(
                f"unknown epilogue {self.epilogue!r}; expected one of {', '.join(EPILOGUES)}"
            )
        for name in ("cin", "cout", "height", "width", "kernel", "stride", "groups", "batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"ConvShape.{name} must be a positive integer, got {value!r}")
        if self.padding < 0:
            raise InputError(f"ConvShape.padding must be >= 0, got {self.padding}")
        if self.cin % self.groups or self.cout % self.groups:
            raise InputError(f"groups={self.groups} does not divide cin={self.cin}, cout={self.cout}")

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one inference of this layer (the whole batch)."""
        per_out = (self.cin // self.groups) * self.kernel * self.kernel
        return self.batch * self.cout * self.out_height * self.out_width * per_out

    def replace(self, **changes: Any) -> ConvShape:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConvShape:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise InputError(f"unknown ConvShape fields: {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except TypeError as exc:  # missing required fields
            raise InputError(f"invalid ConvShape: {exc}") from None

    def key(self) -> str:
        """Canonical, stable text form (used as a database key)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def __str__(self) -> str:
        if self.op == "linear":
            core = f"linear {self.cin}->{self.cout}"
        else:
            core = (
                f"conv{self.kernel}x{self.kernel}/s{self.stride} {self.cin}->{self.cout} "
                f"@{self.height}x{self.width}"
            )
            if self.groups > 1:
                core += f" g{self.groups}"
        return f"{core} [{self.epilogue}] b{self.batch} {self.dtype}"
