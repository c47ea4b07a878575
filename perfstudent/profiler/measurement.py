"""Measurement and the timing protocol (DESIGN §4).

A LUT row is a :class:`Measurement`: every repeat kept (each repeat is the mean
per-call time of one block of back-to-back calls), the median is the figure
used, and IQR/median decides whether the row is noisy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from perfstudent.errors import InputError


@dataclass(frozen=True)
class TimingProtocol:
    """How one latency is measured.

    warmup_s: time-based warm-up before timing. block_s: target duration of one
    block of back-to-back calls (sets the inner loop count so timer overhead is
    negligible). repeats: blocks kept. noise_threshold: IQR/median above which
    a row is re-measured (up to ``remeasure`` times), then flagged noisy.
    """

    warmup_s: float = 0.2
    block_s: float = 0.02
    repeats: int = 15
    noise_threshold: float = 0.05
    remeasure: int = 2

    def __post_init__(self) -> None:
        if self.warmup_s < 0 or self.block_s <= 0 or self.repeats < 3:
            raise InputError("timing protocol needs warmup_s >= 0, block_s > 0 and repeats >= 3")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Measurement:
    """Latency statistics of one timed thing, in milliseconds per call."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    iqr_ms: float
    mean_ms: float
    std_ms: float
    cv: float
    samples: int
    inner: int
    warmup_s: float
    noisy: bool = False
    repeats_ms: tuple[float, ...] = field(default=(), repr=False)

    @property
    def rel_iqr(self) -> float:
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else float("inf")

    @classmethod
    def from_repeats(cls, repeats_ms: list[float] | np.ndarray, inner: int, warmup_s: float,
                     noisy: bool = False) -> Measurement:
        """Summarise per-call times of each repeat block (ms) with numpy's statistics."""
        arr = np.asarray(repeats_ms, dtype=float)
        if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError("a measurement needs finite, non-negative repeat times")
        p10, q1, median, q3, p90 = np.percentile(arr, [10, 25, 50, 75, 90])
        mean = float(arr.mean())
        std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
        return cls(
            median_ms=float(median), p10_ms=float(p10), p90_ms=float(p90),
            iqr_ms=float(q3 - q1), mean_ms=mean, std_ms=std,
            cv=std / mean if mean > 0 else 0.0, samples=int(arr.size), inner=int(inner),
            warmup_s=float(warmup_s), noisy=noisy, repeats_ms=tuple(float(x) for x in arr),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["repeats_ms"] = list(self.repeats_ms)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        data = dict(data)
        data["repeats_ms"] = tuple(data.get("repeats_ms", ()))
        return cls(**data)
