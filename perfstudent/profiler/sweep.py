"""The sweep: fill a LUT with every layer a family's students can have.

Rounds over a :class:`~perfstudent.profiler.runner.Runner`:

1. round 0: the fixed layers (stem, downsample, head) and every *layer series*
   at a coarse width grid (``1``, every ``full // coarse_points`` channels, full;
   every width with ``exhaustive``). A series is one layer of a slot as a function
   of the slot's width (e.g. conv1 ``cin -> w``, conv2 ``w -> cout``); series that
   several slots share (identical blocks) are swept once.
2. adaptive rounds: per series, ``T(w)`` = its row at width ``w``. An open interval
   ``(a, b)`` of measured widths (``b - a > 1``) is closed as *flat* when
   ``|T(b) - T(a)| <= tol · max(T(a), T(b))``; otherwise its midpoint ``m`` is
   measured. Next round, if ``T(m)`` lies within ``tol · T(m)`` of the chord between
   ``a`` and ``b``, both halves are probed once more and closed as *linear* if their
   midpoints are on their chords too (two levels, so evenly spaced steps cannot pass
   for a line; intervals at most ``CONFIRM_ABOVE`` wide close at once, since a single
   step inside them would have moved the midpoint off the chord by half its height);
   otherwise the halves are opened like any interval. All series'
   midpoints form one round; it stops when no interval is open. A step inside an
   interval puts its midpoint off the chord (or makes the ends differ), so steps are
   bisected down to adjacent widths, while flat and linear stretches cost one or
   two probes. ``tol`` is ``SweepConfig.tolerance`` or, if larger, half the relative
   IQR of the rows involved (differences within the noise are not chased).
3. the overhead model of the family's context (see :mod:`perfstudent.lut.view`):
   the network timed end to end at uniform width fractions 1, 3/4, 1/2, 1/4, minus
   the sum of its layer rows, fitted as ``fixed + per_mb · weight MB``.

Rows already in the LUT are skipped; every row is committed as it arrives, and
the rounds depend only on the rows, so a killed sweep re-run resumes and loses
at most the row in flight.
"""

from __future__ import annotations

import itertools
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from perfstudent.lut.view import LatencyView, spec_context, weight_mb
from perfstudent.profiler.timing import timed_seconds
from perfstudent.students import get_family

if TYPE_CHECKING:
    from perfstudent.convshape import ConvShape
    from perfstudent.lut.fingerprint import Fingerprint
    from perfstudent.lut.store import LatencyTable
    from perfstudent.profiler.measurement import Measurement
    from perfstudent.profiler.runner import Runner
    from perfstudent.students.widthspec import WidthSpec

OVERHEAD_FRACTIONS = (1.0, 0.75, 0.5, 0.25)


@dataclass(frozen=True)
class SweepConfig:
    family: str
    input_size: int | None = None
    in_channels: int | None = None
    num_classes: int | None = None
    batch: int = 1
    exhaustive: bool = False
    tolerance: float = 0.03
    coarse_points: int = 4  # grid intervals per series (step = full // coarse_points)
    overhead: bool = True


@dataclass
class SweepReport:
    measured: int = 0
    skipped: int = 0
    rounds: int = 0
    wall_s: float = 0.0
    timed_s: float = 0.0
    overhead_ms: float | None = None
    widths: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"measured": self.measured, "skipped": self.skipped, "rounds": self.rounds,
                "wall_s": self.wall_s, "timed_s": self.timed_s, "overhead_ms": self.overhead_ms,
                "efficiency": self.wall_s / self.timed_s if self.timed_s > 0 else None}


def coarse_widths(full: int, points: int) -> list[int]:
    """``1``, multiples of ``max(1, full // points)`` and ``full``."""
    step = max(1, full // max(1, points))
    return sorted({1, full, *range(step, full + 1, step)})


class _SlotShapes:
    """Caches the layers of each (slot, width) of one full spec."""

    def __init__(self, spec: WidthSpec, batch: int) -> None:
        self.spec, self.batch = spec, batch
        self.family = get_family(spec.family)
        self._cache: dict[tuple[str, int], list[ConvShape]] = {}

    def __call__(self, slot: str, width: int) -> list[ConvShape]:
        key = (slot, width)
        if key not in self._cache:
            self._cache[key] = [layer.shape for layer in
                                self.family.slot_layers(self.spec, slot, width, self.batch)]
        return self._cache[key]


Interval = tuple[int, int]
#: An on-chord midpoint closes an interval at once if the interval is at most this wide:
#: one step inside it would have put the midpoint off the chord by half its height, so
#: only several steps (AVX2 fp32 kernels step every 8 channels) can fake a line; wider
#: intervals must pass the chord test at two levels.
CONFIRM_ABOVE = 8
#: interval -> (its midpoint, whether that midpoint only confirms a linear parent)
Probes = dict[Interval, tuple[int, bool]]


def _probe(intervals: list[tuple[Interval, bool]], cost: dict[int, float],
           tol: dict[int, float]) -> Probes:
    """Midpoints of the intervals that are neither flat nor without interior widths."""
    return {(a, b): ((a + b) // 2, confirming) for (a, b), confirming in intervals
            if b - a > 1 and abs(cost[b] - cost[a]) > max(tol[a], tol[b]) * max(cost[a], cost[b])}


def _split(probes: Probes, cost: dict[int, float], tol: dict[int, float]) -> Probes:
    """One adaptive step for a series, given the costs at last round's midpoints.

    A midpoint on the chord (within ``tolerance``) of a *confirming* interval closes it
    as linear; a first on-chord midpoint opens both halves as confirming (linear must
    hold at two levels, so evenly spaced steps cannot pass as a line); an off-chord
    midpoint opens both halves as ordinary intervals.
    """
    halves: list[tuple[Interval, bool]] = []
    for (a, b), (m, confirming) in probes.items():
        chord = cost[a] + (cost[b] - cost[a]) * (m - a) / (b - a)
        on_chord = abs(cost[m] - chord) <= max(tol[a], tol[m], tol[b]) * cost[m]
        if not (on_chord and (confirming or b - a <= CONFIRM_ABOVE)):
            halves += [((a, m), on_chord), ((m, b), on_chord)]
    return _probe(halves, cost, tol)


class _Sweep:
    def __init__(self, table: LatencyTable, runner: Runner, config: SweepConfig,
                 progress: bool) -> None:
        self.table, self.runner, self.config = table, runner, config
        self.fp: Fingerprint = runner.fingerprint()
        self.spec = get_family(config.family).full_spec(config.input_size, config.in_channels,
                                                        config.num_classes)
        self.shapes = _SlotShapes(self.spec, config.batch)
        self.done = table.keys(self.fp)
        self.report = SweepReport()
        self.bar = tqdm(total=0, desc=f"profile {config.family}", unit="shape", file=sys.stderr,
                        disable=not progress, dynamic_ncols=True)

    def _store(self, shape: ConvShape, measurement: Measurement) -> None:
        self.table.add(self.fp, shape, measurement)
        self.done.add(shape.key())
        self.report.measured += 1
        self.bar.update(1)

    def run_round(self, shapes: list[ConvShape]) -> None:
        todo = list(dict.fromkeys(s for s in shapes if s.key() not in self.done))
        self.report.skipped += len(set(shapes)) - len(todo)
        self.report.rounds += 1
        if todo:
            self.bar.total += len(todo)
            self.bar.set_postfix_str(f"round {self.report.rounds}")
            self.runner.run(todo, self._store)

    def series(self) -> dict[str, tuple[str, int, int]]:
        """Distinct layer series -> (a slot having it, layer index in the slot, full width)."""
        units: dict[str, tuple[str, int, int]] = {}
        for slot, full in self.spec.widths.items():
            ends = zip(self.shapes(slot, 1), self.shapes(slot, full), strict=True)
            for i, (lo, hi) in enumerate(ends):
                units.setdefault(f"{lo.key()}|{hi.key()}", (slot, i, full))
        return units

    def series_shape(self, unit: tuple[str, int, int], width: int) -> ConvShape:
        return self.shapes(unit[0], width)[unit[1]]

    def series_cost(self, view: LatencyView, unit: tuple[str, int, int], width: int) -> tuple[float, float]:
        """(T(w) in ms, its tolerance: max(config, half the row's relative IQR))."""
        m = view.measurements[self.series_shape(unit, width)]
        return m.median_ms, max(self.config.tolerance, 0.5 * m.rel_iqr)

    def run(self) -> SweepReport:
        fam = get_family(self.config.family)
        fixed = [layer.shape for layer in fam.layers(self.spec, self.config.batch) if layer.slot is None]
        units = self.series()
        widths = {u: list(range(1, full + 1)) if self.config.exhaustive
                  else coarse_widths(full, self.config.coarse_points)
                  for u, (_, _, full) in units.items()}
        probes: dict[str, Probes] | None = None
        pending = {u: list(ws) for u, ws in widths.items()}
        shapes = list(fixed)
        while True:
            shapes += [self.series_shape(units[u], w) for u, ws in pending.items() for w in ws]
            self.run_round(shapes)
            if self.config.exhaustive:
                break
            view = LatencyView(self.fp, self.table.rows(self.fp))
            both = {u: {w: self.series_cost(view, units[u], w) for w in ws} for u, ws in widths.items()}
            costs = {u: {w: c for w, (c, _) in d.items()} for u, d in both.items()}
            tols = {u: {w: t for w, (_, t) in d.items()} for u, d in both.items()}
            probes = ({u: _probe([(iv, False) for iv in itertools.pairwise(ws)], costs[u], tols[u])
                       for u, ws in widths.items()} if probes is None
                      else {u: _split(p, costs[u], tols[u]) for u, p in probes.items()})
            pending = {u: sorted({m for m, _ in p.values()}) for u, p in probes.items() if p}
            for u, mids in pending.items():
                widths[u] = sorted(set(widths[u]) | set(mids))
            if not pending:
                break
            shapes = []
        self.report.widths = {f"{units[u][0]}#{units[u][1]}": ws for u, ws in widths.items()}
        return self.report


def fit_overhead(points: list[dict[str, Any]]) -> tuple[float, float]:
    """Least-squares ``residual = fixed + per_mb · weight_mb`` over the points.

    Returns ``(fixed_ms, ms_per_weight_mb)``; with fewer than 3 points or a negative
    slope, the slope is 0 and ``fixed`` is the median residual.
    """
    res = np.asarray([p["residual_ms"] for p in points], dtype=float)
    mb = np.asarray([p["weight_mb"] for p in points], dtype=float)
    if len(points) >= 3 and np.ptp(mb) > 0:
        slope, fixed = np.polyfit(mb, res, 1)
        if slope >= 0:
            return float(fixed), float(slope)
    return float(np.median(res)), 0.0


def measure_overhead(table: LatencyTable, runner: Runner, spec: WidthSpec, batch: int = 1,
                     fractions: tuple[float, ...] = OVERHEAD_FRACTIONS) -> float:
    """Measure, store and return the overhead model of ``spec``'s context (ms at full width).

    At uniform width fractions the network is timed end to end; residual = network
    − Σ layer rows. Model (see :mod:`perfstudent.lut.view`): ``fixed + per_mb · W``
    with ``W`` the conv/linear weight megabytes of the student, fitted by least squares.
    """
    fp = runner.fingerprint()
    view = LatencyView(fp, table.rows(fp))
    points = []
    for fraction in fractions:
        probe = spec.with_widths({s: max(1, round(fraction * w)) for s, w in spec.widths.items()})
        net = runner.time_model(probe)
        conv_sum, _ = view.conv_sum_ms(probe, batch)
        points.append({"fraction": fraction, "net_ms": net.median_ms, "conv_sum_ms": conv_sum,
                       "residual_ms": net.median_ms - conv_sum, "net_noisy": net.noisy,
                       "weight_mb": weight_mb(probe, batch)})
    fixed, per_mb = fit_overhead(points)
    table.set_overhead(fp, spec_context(spec, batch), fixed,
                       {"points": points, "fixed_ms": fixed, "ms_per_weight_mb": per_mb})
    return fixed + per_mb * weight_mb(spec, batch)


def sweep(table: LatencyTable, runner: Runner, config: SweepConfig,
          progress: bool = True) -> SweepReport:
    """Fill ``table`` for ``config.family`` with ``runner`` (see the module docstring)."""
    start_wall, start_timed = time.perf_counter(), timed_seconds()
    job = _Sweep(table, runner, config, progress)
    try:
        report = job.run()
        fp, ctx = job.fp, spec_context(job.spec, config.batch)
        if config.overhead:
            if not LatencyView(fp, {}, table.overheads(fp)).has_overhead(job.spec, config.batch):
                job.bar.set_postfix_str("overhead")
                measure_overhead(table, runner, job.spec, config.batch)
            view = LatencyView(fp, {}, table.overheads(fp))  # re-read: the term may be new
            report.overhead_ms = view.overhead_ms(job.spec, config.batch)
        table.record_sweep(fp, ctx, "exhaustive" if config.exhaustive else "adaptive",
                           table.count(fp))
    finally:
        job.bar.close()
    report.wall_s = time.perf_counter() - start_wall
    report.timed_s = timed_seconds() - start_timed
    return report
