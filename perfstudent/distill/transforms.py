"""Batch transforms on uint8 image tensors: augmentation and normalisation.

Images are kept as ``uint8`` N×C×H×W tensors in memory and turned into
normalised ``float32`` batches here with plain torch ops, so every random
choice comes from one explicit ``torch.Generator`` (deterministic with the
run's seed, epoch and rank).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Transform:
    """Per-dataset augmentation and normalisation.

    Train: zero-pad by ``pad`` pixels, take a random ``crop``×``crop`` window,
    mirror horizontally with probability 1/2 if ``flip``. Test: the centre
    ``crop``×``crop`` window. Both: ``x = (x/255 - mean_c) / std_c``.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop: int
    pad: int = 0
    flip: bool = False

    def __call__(self, images: torch.Tensor, augment: bool,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x = images.float().div_(255.0)
        x = self._random_crop_flip(x, generator) if augment else self._center_crop(x)
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    def _center_crop(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        top, left = (h - self.crop) // 2, (w - self.crop) // 2
        return x[..., top:top + self.crop, left:left + self.crop].contiguous()

    def _random_crop_flip(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        n, _, h, w = x.shape
        if self.pad:
            x = F.pad(x, (self.pad, self.pad, self.pad, self.pad))
        tops = torch.randint(0, h + 2 * self.pad - self.crop + 1, (n,), generator=generator)
        lefts = torch.randint(0, w + 2 * self.pad - self.crop + 1, (n,), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
        out = torch.empty(n, x.shape[1], self.crop, self.crop, dtype=x.dtype)
        for i in range(n):
            top, left = int(tops[i]), int(lefts[i])
            patch = x[i, :, top:top + self.crop, left:left + self.crop]
            out[i] = patch.flip(-1) if self.flip and bool(flips[i]) else patch
        return out
