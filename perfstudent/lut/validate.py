"""Prediction accuracy: random students, predicted by the LUT vs measured end to end.

Metrics over the samples: share with ``|pred/meas - 1| <= 5%`` and ``<= 10%``,
MAPE = mean ``|pred - meas| / meas`` (in %), Spearman ρ = Pearson correlation of
the ranks (pandas ``rank``, average ties) of predicted and measured latencies.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from perfstudent.errors import InputError

if TYPE_CHECKING:
    from perfstudent.lut.view import LatencyView
    from perfstudent.profiler.backends import Backend
    from perfstudent.profiler.measurement import TimingProtocol
    from perfstudent.students.widthspec import WidthSpec


DISTRIBUTIONS = ("uniform", "scaled")


def random_specs(base: WidthSpec, samples: int, seed: int = 0,
                 distribution: str = "uniform") -> list[WidthSpec]:
    """``samples`` random WidthSpecs of ``base``'s family.

    ``uniform``: every slot width uniform in 1..full (independent slots, so totals
    cluster around half the full latency). ``scaled``: a student-wide fraction
    ``f ~ U(0.1, 1)``, then each slot ``round(full · f · U(0.7, 1.3))`` clipped to 1..full
    (spread-out totals, like plans for different budgets).
    """
    if distribution not in DISTRIBUTIONS:
        raise InputError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}")
    rng = np.random.default_rng(seed)
    specs = []
    for _ in range(samples):
        if distribution == "uniform":
            widths = {s: int(rng.integers(1, w + 1)) for s, w in base.widths.items()}
        else:
            f = rng.uniform(0.1, 1.0)
            widths = {s: int(np.clip(round(w * f * rng.uniform(0.7, 1.3)), 1, w))
                      for s, w in base.widths.items()}
        specs.append(base.with_widths(widths))
    return specs


def spearman(x: list[float], y: list[float]) -> float:
    import pandas as pd

    if len(x) < 2:
        return float("nan")
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass
class ValidationReport:
    fingerprint: dict[str, Any]
    family: str
    input_size: int
    distribution: str = "uniform"
    predicted_ms: list[float] = field(default_factory=list)
    measured_ms: list[float] = field(default_factory=list)
    widths: list[dict[str, int]] = field(default_factory=list)

    def errors(self) -> np.ndarray:
        return np.asarray(self.predicted_ms) / np.asarray(self.measured_ms) - 1.0

    def summary(self) -> dict[str, Any]:
        err = np.abs(self.errors())
        return {"samples": len(err), "within_5pct": float(np.mean(err <= 0.05)),
                "within_10pct": float(np.mean(err <= 0.10)), "mape_pct": float(100 * err.mean()),
                "max_abs_err_pct": float(100 * err.max()), "mean_err_pct": float(100 * self.errors().mean()),
                "spearman": spearman(self.predicted_ms, self.measured_ms)}

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "perfstudent.validation/1", "family": self.family,
                "input_size": self.input_size, "distribution": self.distribution,
                "fingerprint": self.fingerprint, **self.summary(),
                "students": [{"widths": w, "predicted_ms": p, "measured_ms": m}
                             for w, p, m in zip(self.widths, self.predicted_ms, self.measured_ms,
                                                strict=True)]}

    def text(self) -> str:
        s = self.summary()
        return (f"{self.family} @{self.input_size}: {s['samples']} random students "
                f"({self.distribution})\n"
                f"  within ±5%:  {100 * s['within_5pct']:.0f}%\n"
                f"  within ±10%: {100 * s['within_10pct']:.0f}%\n"
                f"  MAPE:        {s['mape_pct']:.2f}%  (max {s['max_abs_err_pct']:.2f}%, "
                f"mean signed {s['mean_err_pct']:+.2f}%)\n"
                f"  Spearman ρ:  {s['spearman']:.4f}")


def validate(view: LatencyView, backend: Backend, base: WidthSpec, samples: int,
             protocol: TimingProtocol, seed: int = 0, progress: bool = True,
             distribution: str = "uniform") -> ValidationReport:
    """Predict and measure ``samples`` random students of ``base``'s family."""
    specs = random_specs(base, samples, seed, distribution)
    predictions = [view.predict(spec).total_ms for spec in specs]  # fail fast on a missing row
    report = ValidationReport(view.fingerprint.to_dict(), base.family, base.input_size, distribution)
    for spec, pred in tqdm(list(zip(specs, predictions, strict=True)), desc="validate",
                           unit="student", file=sys.stderr, disable=not progress):
        report.measured_ms.append(backend.time_model(spec, protocol).median_ms)
        report.predicted_ms.append(pred)
        report.widths.append(dict(spec.widths))
    return report
