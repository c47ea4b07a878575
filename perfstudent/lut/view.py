"""Answering latency queries from the rows of one fingerprint.

**Step-preserving interpolation.** Latency is a staircase in a channel count
(kernels work on blocks of channels), with linear stretches where compute
dominates. A layer whose shape was not measured is answered from the *series* of
measured shapes that equal it in every field but one channel count (``cin`` or
``cout``): with ``a < w < b`` the nearest measured counts around ``w``, the answer is
the straight line between ``T(a)`` and ``T(b)``, so it always lies between the two
measurements (no spline, no overshoot of a step, and a step between two adjacent
measured counts stays a step). A query below the smallest measured count gets
that count's value; above the largest, there is no answer (no extrapolation).

*Error bound.* The answer is within ``|T(b) - T(a)|`` of the truth whenever ``T`` is
monotone on ``[a, b]``. The adaptive sweep (:mod:`perfstudent.profiler.sweep`)
leaves ``(a, b)`` unrefined only if ``|T_slot(b) - T_slot(a)| <= tol · T_slot`` (flat: error
<= tol) or if the midpoint of its parent interval lay within ``tol`` of the chord
(linear: error <= tol at the probe, more only for a step hidden between probes).

**Prediction.** ``predict(spec) = Σ_layers layer_ms + overhead_ms(spec)``, with
``overhead_ms(spec) = fixed + per_mb · W(spec)``: ``fixed`` is the per-inference cost
and the non-conv ops (pooling, flatten, the runtime's per-call cost, minus the
per-call costs the isolated rows count once per layer), ``W`` the student's conv and
linear weight megabytes and ``per_mb`` the extra ms per MB of weights that a layer
pays inside a network, where its weights are cold (streamed from L3/DRAM), but
not in isolation, where they stay in L1/L2 between calls (PyTorch's oneDNN also
reorders the weights on every call). Both are fitted per fingerprint and context
(family, input size, channels, classes, batch) by the sweep from the network timed
at uniform width fractions minus the sum of its rows (least squares; slope 0 if
it comes out negative).
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from perfstudent.errors import InputError

if TYPE_CHECKING:
    from perfstudent.convshape import ConvShape
    from perfstudent.lut.fingerprint import Fingerprint
    from perfstudent.profiler.measurement import Measurement
    from perfstudent.students.registry import Layer
    from perfstudent.students.widthspec import WidthSpec

_AXES = ("cin", "cout")


def spec_context(spec: WidthSpec, batch: int = 1) -> dict[str, Any]:
    """The key of an overhead term: everything of a spec except its slot widths."""
    return {"family": spec.family, "input_size": spec.input_size, "in_channels": spec.in_channels,
            "num_classes": spec.num_classes, "batch": batch}


def weight_mb(spec: WidthSpec, batch: int = 1) -> float:
    """Conv and linear weight megabytes of ``spec`` (``cin/groups · cout · k² · bytes``)."""
    from perfstudent.students import conv_shapes

    size = {"float32": 4, "float16": 2, "bfloat16": 2}
    return sum(s.cin // s.groups * s.cout * s.kernel ** 2 * size.get(s.dtype, 4)
               for s in (layer.shape for layer in conv_shapes(spec, batch))) / 1e6


def _series_key(shape: ConvShape, axis: str) -> tuple[Any, ...]:
    return tuple(sorted((k, v) for k, v in shape.to_dict().items() if k != axis))


@dataclass(frozen=True)
class Prediction:
    total_ms: float
    overhead_ms: float
    per_layer: list[tuple[Layer, float]]

    def to_dict(self) -> dict[str, Any]:
        return {"total_ms": self.total_ms, "overhead_ms": self.overhead_ms,
                "per_layer": [{"path": layer.path, "slot": layer.slot, "shape": str(layer.shape),
                               "ms": ms} for layer, ms in self.per_layer]}


class LatencyView:
    """Read-only answers for one fingerprint (see the module docstring)."""

    def __init__(self, fingerprint: Fingerprint, rows: dict[ConvShape, Measurement],
                 overheads: dict[str, tuple[float, dict[str, Any]]] | None = None) -> None:
        self.fingerprint = fingerprint
        self.rows = {shape: m.median_ms for shape, m in rows.items()}
        self.measurements = dict(rows)
        self.overheads = dict(overheads or {})
        self._series: dict[tuple[str, tuple[Any, ...]], tuple[list[int], list[float]]] = {}
        for axis in _AXES:
            groups: dict[tuple[Any, ...], list[tuple[int, float]]] = {}
            for shape, ms in self.rows.items():
                groups.setdefault(_series_key(shape, axis), []).append((getattr(shape, axis), ms))
            for key, points in groups.items():
                points.sort()
                self._series[(axis, key)] = ([p[0] for p in points], [p[1] for p in points])

    def _interpolate(self, shape: ConvShape, axis: str) -> float | None:
        series = self._series.get((axis, _series_key(shape, axis)))
        if series is None:
            return None
        counts, values = series
        w = getattr(shape, axis)
        i = bisect.bisect_left(counts, w)
        if i == len(counts):
            return None
        if counts[i] == w or i == 0:
            return values[i]
        a, b = counts[i - 1], counts[i]
        return values[i - 1] + (values[i] - values[i - 1]) * (w - a) / (b - a)

    def layer_ms(self, shape: ConvShape) -> float:
        """Latency of ``shape`` in ms: its row, else the interpolation of the module docstring."""
        if shape in self.rows:
            return self.rows[shape]
        answers = [a for a in (self._interpolate(shape, axis) for axis in _AXES) if a is not None]
        if not answers:
            raise InputError(
                f"the LUT has no row for {shape} ({self.fingerprint.label()}) and no measured "
                f"neighbour to answer from; fill it with `perfstudent profile --device "
                f"{self.fingerprint.device} --backend {self.fingerprint.backend} "
                f"--threads {self.fingerprint.threads} --arch ARCH --input-size N`")
        return max(answers)

    def has_overhead(self, spec: WidthSpec, batch: int = 1) -> bool:
        return json.dumps(spec_context(spec, batch), sort_keys=True,
                          separators=(",", ":")) in self.overheads

    def overhead_ms(self, spec: WidthSpec, batch: int = 1) -> float:
        """Overhead of ``spec`` in ms: ``fixed + per_mb · weight_mb(spec)`` (module docstring)."""
        key = json.dumps(spec_context(spec, batch), sort_keys=True, separators=(",", ":"))
        if key not in self.overheads:
            raise InputError(
                f"the LUT has no overhead term for {spec.family} at {spec.input_size}x"
                f"{spec.input_size} ({self.fingerprint.label()}); measure it with `perfstudent "
                f"profile --device {self.fingerprint.device} --backend {self.fingerprint.backend} "
                f"--threads {self.fingerprint.threads} --arch {spec.family} "
                f"--input-size {spec.input_size}`")
        fixed, data = self.overheads[key]
        return fixed + float(data.get("ms_per_weight_mb", 0.0)) * weight_mb(spec, batch)

    def conv_sum_ms(self, spec: WidthSpec, batch: int = 1) -> tuple[float, list[tuple[Layer, float]]]:
        from perfstudent.students import conv_shapes

        per_layer = [(layer, self.layer_ms(layer.shape)) for layer in conv_shapes(spec, batch)]
        return sum(ms for _, ms in per_layer), per_layer

    def predict(self, spec: WidthSpec, batch: int = 1) -> Prediction:
        """Σ per-layer rows + overhead terms (ms)."""
        total, per_layer = self.conv_sum_ms(spec, batch)
        overhead = self.overhead_ms(spec, batch)
        return Prediction(total + overhead, overhead, per_layer)
