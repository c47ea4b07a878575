"""Measurement and the timing protocol (docs/profiler.md, "timing protocol").

A :class:`Measurement` keeps every sample it was made of: a sample is the mean
per-call time of one block of back-to-back calls, and samples of one item are
spread over time (interleaved rounds, :mod:`perfstudent.profiler.timing`). The
figure used, :attr:`Measurement.ms`, is an *estimator* over the kept samples,
chosen by name, so a LUT can be re-read with another estimator without being
measured again. Samples taken while a canary kernel ran slow are kept apart
(``slow_ms``) and never enter the figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from perfstudent.errors import InputError
from perfstudent.records import Record


def _quantile(q: float) -> Callable[[np.ndarray], float]:
    return lambda a: float(np.quantile(a, q, method="linear"))


#: Estimators by name: what a row's samples become. ``p20`` is the default: on this
#: shared machine it was the most repeatable of min / p10 / p20 / median across
#: passes (docs/profiler.md has the data; benchmarks/prediction.py re-measures it).
ESTIMATORS: dict[str, Callable[[np.ndarray], float]] = {
    "min": lambda a: float(a.min()),
    "p10": _quantile(0.10),
    "p20": _quantile(0.20),
    "p25": _quantile(0.25),
    "median": _quantile(0.50),
    "mean": lambda a: float(a.mean()),
}
DEFAULT_ESTIMATOR = "p20"


def check_estimator(name: str) -> str:
    if name not in ESTIMATORS:
        raise InputError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATORS)}")
    return name


@dataclass(frozen=True)
class TimingProtocol:
    """How items are timed (all of one call to the protocol together, interleaved).

    warmup_s: time-based warm-up of each item before its first sample.
    block_s: target duration of one sample (the inner loop is sized to it, so the
    timer's own cost is negligible). rounds: kept samples per item; every round
    visits every item once. estimator: the figure taken from the kept samples.
    canary_every: items timed between two samples of the canary kernel (0: no
    canary). slow_factor: a canary sample above ``slow_factor`` x its baseline (a
    low quantile of all its samples) marks the items timed next to it as taken in a
    slow phase; their samples are set aside and re-measured. extra_rounds: how many
    rounds beyond ``rounds`` re-measurement may take. max_wait_s: how long to wait,
    polling the canary, for a slow phase to end before measuring on (slow phases
    here last seconds; re-measuring inside one would only take more slow samples).
    group: how many items are
    prepared and interleaved at once (bounds memory). noise_threshold: relative IQR
    of the kept samples above which an item is flagged noisy.
    """

    warmup_s: float = 0.05
    block_s: float = 0.005
    rounds: int = 15
    estimator: str = DEFAULT_ESTIMATOR
    canary_every: int = 4
    slow_factor: float = 1.15
    extra_rounds: int = 15
    max_wait_s: float = 20.0
    group: int = 16
    noise_threshold: float = 0.05

    def __post_init__(self) -> None:
        if not (self.warmup_s >= 0 and self.block_s > 0 and self.rounds >= 3):
            raise InputError("timing protocol needs warmup_s >= 0, block_s > 0 and rounds >= 3")
        if self.canary_every < 0 or self.extra_rounds < 0 or self.group < 1 or self.max_wait_s < 0:
            raise InputError("timing protocol needs canary_every >= 0, extra_rounds >= 0, "
                             "max_wait_s >= 0 and group >= 1")
        if not (self.slow_factor > 1 and math.isfinite(self.slow_factor)):
            raise InputError("timing protocol needs a finite slow_factor > 1")
        check_estimator(self.estimator)

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def _samples(values: Any, what: str) -> tuple[float, ...]:
    if not isinstance(values, (list, tuple)):
        raise InputError(f"{what} must be a list of numbers")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise InputError(f"{what} must hold finite, non-negative numbers, got {v!r}")
        out.append(float(v))
    return tuple(out)


@dataclass(frozen=True)
class Measurement(Record):
    """Latency of one timed item, in milliseconds per call (see the module docstring).

    A sub-record (no schema of its own): LUT rows, run summaries and plans carry it.
    ``ms``, ``samples`` (the count) and ``spread`` are written for readers and derived
    again on reading.
    """

    DERIVED = ("ms", "samples", "spread")

    samples_ms: tuple[float, ...]
    estimator: str = DEFAULT_ESTIMATOR
    inner: int = 1
    slow_ms: tuple[float, ...] = ()
    noisy: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "samples_ms", _samples(self.samples_ms, "samples_ms"))
        object.__setattr__(self, "slow_ms", _samples(self.slow_ms, "slow_ms"))
        if not self.samples_ms:
            raise InputError("a measurement needs at least one sample")
        if isinstance(self.inner, bool) or not isinstance(self.inner, int) or self.inner < 1:
            raise InputError(f"a measurement's inner count must be a positive integer, got {self.inner!r}")
        check_estimator(self.estimator)

    @classmethod
    def from_samples(cls, samples_ms: Any, inner: int = 1, estimator: str = DEFAULT_ESTIMATOR,
                     slow_ms: Any = (), noisy: bool = False) -> Measurement:
        return cls(tuple(samples_ms), estimator, int(inner), tuple(slow_ms), bool(noisy))

    @property
    def ms(self) -> float:
        """The figure used: the estimator over the kept samples."""
        return ESTIMATORS[self.estimator](np.asarray(self.samples_ms))

    @property
    def samples(self) -> int:
        """How many samples were kept."""
        return len(self.samples_ms)

    @property
    def spread(self) -> float:
        """Relative interquartile range of the kept samples (IQR / median)."""
        q1, med, q3 = np.quantile(np.asarray(self.samples_ms), [0.25, 0.5, 0.75])
        return float((q3 - q1) / med) if med > 0 else math.inf

    def with_estimator(self, estimator: str) -> Measurement:
        return replace(self, estimator=check_estimator(estimator))
