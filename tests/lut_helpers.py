"""Shared helpers for the LUT tests: a fingerprint and measurements without timing anything."""

from __future__ import annotations

from typing import Any

from perfstudent.lut import Fingerprint
from perfstudent.profiler.measurement import Measurement


def fingerprint(threads: int = 1, **settings: Any) -> Fingerprint:
    return Fingerprint(device="local", device_model="Test CPU", device_properties={"arch": "x86_64"},
                       backend="onnxruntime", backend_version="1.0",
                       settings={"threads": threads, "opt_level": "extended"} | settings,
                       threads=threads, os="Linux", kernel="6.0", governor=None)


def measurement(ms: float, spread: float = 0.0) -> Measurement:
    return Measurement.from_repeats([ms - spread, ms, ms + spread], inner=10, warmup_s=0.0)
