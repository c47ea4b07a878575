"""A synthetic staircase latency model, for tests and for timing the planner.

NOT a device model: no number it produces was measured. It mimics the shape
of real CPU latency tables (docs/design.md, formulas): conv kernels process output channels
in blocks of ``block`` channels, so latency is a staircase in width,
``t = base_ms + ms_per_gmac · MACs(ceil(cout/block)·block, ceil(cin/block)·block) / 1e9``,
optionally with deterministic per-shape noise (a hash of the shape key) so
that the staircase is not perfectly flat. Use it where the planner's logic or
speed is tested; plan real students with a LUT filled by ``perfstudent profile``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from perfstudent.convshape import ConvShape
from perfstudent.students.registry import get_family
from perfstudent.students.widthspec import WidthSpec


def _unit_noise(key: str, seed: int) -> float:
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 * 2 - 1  # in [-1, 1)


@dataclass(frozen=True)
class StaircaseModel:
    """``slot_ms`` = Σ of the slot's layers, each a staircase in channels; ``fixed_ms`` = a
    constant plus the fixed layers (stem, shortcuts, head)."""

    block: int = 8
    ms_per_gmac: float = 20.0
    base_ms: float = 0.01
    fixed_overhead_ms: float = 0.2
    noise: float = 0.0
    seed: int = 0

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {"device": "synthetic", "backend": "staircase", "threads": 1,
                "model": {"block": self.block, "ms_per_gmac": self.ms_per_gmac,
                          "noise": self.noise, "seed": self.seed}}

    def _padded(self, channels: int) -> int:
        return math.ceil(channels / self.block) * self.block

    def layer_ms(self, shape: ConvShape) -> float:
        padded = shape.replace(cin=self._padded(shape.cin), cout=self._padded(shape.cout),
                               groups=1)
        ms = self.base_ms + self.ms_per_gmac * padded.macs / 1e9
        if self.noise:
            ms *= 1 + self.noise * _unit_noise(shape.key(), self.seed)
        return ms

    def slot_ms(self, spec: WidthSpec, slot: str, width: int) -> float:
        family = get_family(spec.family)
        return sum(self.layer_ms(layer.shape) for layer in family.slot_layers(spec, slot, width))

    def fixed_ms(self, spec: WidthSpec) -> float:
        family = get_family(spec.family)
        return self.fixed_overhead_ms + sum(self.layer_ms(layer.shape)
                                            for layer in family.layers(spec) if layer.slot is None)
