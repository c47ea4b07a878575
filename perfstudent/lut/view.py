"""Answering latency queries from the rows of one fingerprint: the model the planner plans on.

**The model.** ``predict(spec) = fixed_ms(spec) + Σ_slots slot_ms(spec, slot, w_slot)``.

- A *row value* is the cost of the block that holds a slot, at the slot's
  width, *in its neighbourhood*: from a chain of the block between the blocks
  around it in the network (:class:`~perfstudent.blockshape.Chain`),
  ``row(w) = T(block alone, full width) + T(chain at w) - T(chain at full)``.
  The difference carries what changing the width does to the block *and* to
  the layout and fusions of its neighbours; the anchor puts it on the scale of
  the block itself.
- ``slot_ms = scale · row`` and ``fixed_ms`` are fitted per fingerprint and
  context (family, input size, channels, classes, batch) by the sweep, by least
  squares of ``network ≈ fixed + scale · Σ rows`` over calibration networks of
  every kind. ``fixed`` is the stem, the head, the graph's own entry and exit;
  ``scale`` is what a block costs inside the whole network over what it costs in
  its three-block chain, where its neighbours' weights and activations stay in
  cache (measured here: 1.03 for resnet20, 1.2 for resnet56 at 32 px). Neither
  depends on the widths, so the planner's knapsack
  (:mod:`perfstudent.plan.problem`) sees exactly this model: a plan's
  predicted latency is ``predict(plan.spec)``.

**Between measured widths.** Latency is a staircase in a channel count. Where
the runtime runs channel counts that are multiples of ``g`` on one kernel path
and the others on another (ONNX Runtime at ``all``: multiples of 4 in NCHWc
blocks, the rest in plain NCHW kernels; two staircases interleaved), a width is
answered from the measured widths of its own class, aligned or not (``g`` is
the fingerprint's ``width_alignment`` setting, 1 elsewhere: one class). With
``a < w < b`` the nearest measured widths of the class around ``w``, the answer
is the straight line between their costs, so it lies between two measurements
(a step between adjacent measured widths stays a step); below the smallest
measured width of the class the answer is that width's cost; above the largest
there is none (no extrapolation).

*Error bound.* The answer is within ``|T(b) - T(a)|`` of the truth whenever the
cost is monotone on ``[a, b]`` within the class; the adaptive sweep
(:mod:`perfstudent.profiler.sweep`) leaves ``(a, b)`` unrefined only where that
difference is within its tolerance or the midpoint lay on the chord.

**Smoothed rows** (``smooth=True``, the default). Within a class, a slot's row
values in one context are replaced by their isotonic fit
(:mod:`perfstudent.lut.smooth`): a row is a difference of two chain timings,
and where the neighbours dominate the chain its noise is as large as a thin
block's cost; a dip in the staircase is then noise the planner would exploit.
The overhead term is fitted on the rows as this view reads them, from the
calibration networks stored with it (:func:`perfstudent.lut.overhead.fit_overhead`),
so it matches the rows it is added to (smoothed or not, and rows added since
the sweep). ``smooth=False`` reads the rows as measured (what the sweep's
refinement decides on, and what the stored term was fitted on).
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError
from perfstudent.lut.overhead import fit_overhead
from perfstudent.lut.smooth import isotonic
from perfstudent.students import get_family

if TYPE_CHECKING:
    from perfstudent.lut.fingerprint import Fingerprint
    from perfstudent.measurement import Measurement
    from perfstudent.students.widthspec import WidthSpec


def spec_context(spec: WidthSpec, batch: int = 1) -> dict[str, Any]:
    """The key of an overhead term: everything of a spec except its slot widths."""
    return {"family": spec.family, "input_size": spec.input_size, "in_channels": spec.in_channels,
            "num_classes": spec.num_classes, "batch": batch}


def context_key(spec: WidthSpec, batch: int = 1) -> str:
    return json.dumps(spec_context(spec, batch), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Prediction:
    total_ms: float
    fixed_ms: float
    per_slot: list[tuple[str, int, float]]  # (slot, width, ms)

    def to_dict(self) -> dict[str, Any]:
        return {"total_ms": self.total_ms, "fixed_ms": self.fixed_ms,
                "per_slot": [{"slot": s, "width": w, "ms": ms} for s, w, ms in self.per_slot]}


def chain_values(rows: dict[Chain, Measurement]) -> dict[Chain, float]:
    """Each measured chain's slot cost in ms (the module docstring)."""
    values = {}
    for chain, m in rows.items():
        if chain.alone:  # a slot without neighbours, or the anchor of one with them
            values[chain] = m.ms
            continue
        context, anchor = chain.context(), Chain(chain.block.at(chain.block.full))
        if context in rows and anchor in rows:
            values[chain] = rows[anchor].ms + m.ms - rows[context].ms
    return values


def _alignment(fingerprint: Fingerprint) -> int:
    """The fingerprint's ``width_alignment`` setting (at least 1; 1 when unset), checked."""
    settings = fingerprint.settings if isinstance(fingerprint.settings, dict) else {}
    value = settings.get("width_alignment") or 1
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"fingerprint {fingerprint.label()}: width_alignment must be an integer, "
                         f"got {value!r}")
    return max(1, value)


class LatencyView:
    """Read-only answers for one fingerprint (see the module docstring).

    ``estimator`` re-reads every row's raw samples with another estimator
    (``min``, ``p10``, ``p20``, ``median``, ...) without measuring again.
    """

    def __init__(self, fingerprint: Fingerprint, rows: dict[Chain, Measurement],
                 overheads: dict[str, tuple[float, dict[str, Any]]] | None = None,
                 estimator: str | None = None, smooth: bool = True) -> None:
        self.fingerprint = fingerprint
        self.measurements = {c: (m if estimator is None else m.with_estimator(estimator))
                             for c, m in rows.items()}
        self.overheads = dict(overheads or {})
        self.alignment = _alignment(fingerprint)
        self.smooth = smooth
        series: dict[tuple[Chain, bool], list[tuple[int, Chain, float]]] = {}
        for chain, ms in chain_values(self.measurements).items():
            series.setdefault((chain.context(), self._class(chain.block.width)), []).append(
                (chain.block.width, chain, ms))
        self.values: dict[Chain, float] = {}
        self._series: dict[tuple[Chain, bool], tuple[list[int], list[float]]] = {}
        for key, points in series.items():
            points.sort(key=lambda p: p[0])
            values = [ms for _, _, ms in points]
            values = isotonic(values) if smooth else values
            self.values.update((chain, ms) for (_, chain, _), ms in zip(points, values, strict=True))
            self._series[key] = ([w for w, _, _ in points], values)
        self._slot_chains: dict[tuple[str, int], dict[str, Chain]] = {}
        self._fits: dict[str, tuple[float, float]] = {}

    def _class(self, width: int) -> bool:
        """True for an aligned width (a multiple of the alignment; every width when it is 1)."""
        return width % self.alignment == 0

    def chain_ms(self, chain: Chain) -> float:
        """Slot cost of ``chain`` in ms: measured, else interpolated in its class (module docstring)."""
        if chain in self.values:
            return self.values[chain]
        found = self._series.get((chain.context(), self._class(chain.block.width)))
        if found is not None:
            widths, values = found
            w = chain.block.width
            i = bisect.bisect_left(widths, w)
            if i < len(widths):
                if i == 0:
                    return values[0]
                a, b = widths[i - 1], widths[i]
                return values[i - 1] + (values[i] - values[i - 1]) * (w - a) / (b - a)
        fp = self.fingerprint
        raise InputError(
            f"the LUT has no row for {chain.block.label()} in its context ({fp.label()}) and no "
            f"measured neighbour to answer from; fill it with `perfstudent profile --device "
            f"{fp.device} --backend {fp.backend} --threads {fp.threads} --family FAMILY --input-size N`")

    def slot_chains(self, spec: WidthSpec, batch: int = 1) -> dict[str, Chain]:
        """Each slot's chain at ``spec``'s widths (the contexts are cached per family context)."""

        cache_key = (context_key(spec, batch), batch)
        if cache_key not in self._slot_chains:
            self._slot_chains[cache_key] = get_family(spec.family).slot_chains(spec, batch)
        return {s: c.at(spec.widths[s]) for s, c in self._slot_chains[cache_key].items()}

    def slot_ms(self, spec: WidthSpec, slot: str, width: int, batch: int = 1) -> float:
        """Cost of ``slot``'s block at ``width`` inside ``spec``'s network: ``scale · row``, ms."""
        return self.scale(spec, batch) * self.chain_ms(self.slot_chains(spec, batch)[slot].at(width))

    def slot_rows(self, spec: WidthSpec, batch: int = 1) -> list[tuple[str, int, float]]:
        """``(slot, width, row value)`` of every slot of ``spec`` (unscaled, ms)."""
        chains = self.slot_chains(spec, batch)
        return [(slot, spec.widths[slot], self.chain_ms(chains[slot])) for slot in spec.widths]

    def has_overhead(self, spec: WidthSpec, batch: int = 1) -> bool:
        return context_key(spec, batch) in self.overheads

    def scale(self, spec: WidthSpec, batch: int = 1) -> float:
        """The fitted in-network over in-chain ratio of ``spec``'s context (module docstring)."""
        return self._fit(spec, batch)[1]

    def fixed_ms(self, spec: WidthSpec, batch: int = 1) -> float:
        """The overhead term of ``spec``'s context in ms (module docstring)."""
        return self._fit(spec, batch)[0]

    def _fit(self, spec: WidthSpec, batch: int) -> tuple[float, float]:
        """``(fixed_ms, scale)`` of ``spec``'s context, fitted on this view's rows (as measured
        or smoothed, and any rows added since the sweep) from the calibration networks stored
        with the term; as stored when none of them can be read."""
        key = context_key(spec, batch)
        if key not in self.overheads:
            fp = self.fingerprint
            raise InputError(
                f"the LUT has no overhead term for {spec.family} at {spec.input_size}x"
                f"{spec.input_size} ({fp.label()}); measure it with `perfstudent profile --device "
                f"{fp.device} --backend {fp.backend} --threads {fp.threads} --family {spec.family} "
                f"--input-size {spec.input_size}`")
        if key not in self._fits:
            fixed, data = self.overheads[key]
            points = []
            for point in data.get("points") or []:
                try:
                    probe = spec.with_widths(point["widths"])
                    rows = sum(ms for _, _, ms in self.slot_rows(probe, batch))
                    points.append((rows, float(point["net_ms"])))
                except (InputError, KeyError, TypeError, ValueError):
                    continue  # a network these rows cannot answer: fitted on the others
            if points:
                fixed, scale, _ = fit_overhead(points, self._floor_rows(spec, batch))
                self._fits[key] = (fixed, scale)
            else:
                self._fits[key] = (fixed, float(data.get("scale", 1.0)))
        return self._fits[key]

    def _floor_rows(self, spec: WidthSpec, batch: int) -> float | None:
        """The row sum of ``spec``'s smallest student (every slot 1 channel); None if unknown."""
        try:
            return sum(ms for _, _, ms in self.slot_rows(spec.with_widths({s: 1 for s in spec.widths}),
                                                         batch))
        except InputError:
            return None

    def predict_slots(self, spec: WidthSpec, batch: int = 1) -> list[tuple[str, int, float]]:
        """``(slot, width, slot_ms)`` of every slot of ``spec`` (scaled, ms)."""
        scale = self.scale(spec, batch)
        return [(s, w, scale * ms) for s, w, ms in self.slot_rows(spec, batch)]

    def predict(self, spec: WidthSpec, batch: int = 1) -> Prediction:
        """``fixed_ms + Σ slot_ms`` in ms."""
        fixed = self.fixed_ms(spec, batch)
        per_slot = self.predict_slots(spec, batch)
        return Prediction(fixed + sum(ms for _, _, ms in per_slot), fixed, per_slot)
