"""The sweep: fill a LUT with every slot block a family's students can have, in context.

Rounds over a :class:`~perfstudent.profiler.runner.Runner`:

1. The *contexts* of the family: one per distinct (previous block, slot block,
   next block) of the full network (identical ones share rows, across
   families too). Each width of a context is one row: the block at that width
   between its neighbours at full width (:class:`~perfstudent.blockshape.Chain`);
   each context also has one row of its block alone at full width, the anchor
   of its costs (:mod:`perfstudent.lut.view`).
2. Widths are split into two classes, the multiples of ``g`` and the others
   (``g``: the runner's width alignment; ONNX Runtime at ``all`` runs channel
   counts that are multiples of 4 in NCHWc blocks and the rest in plain kernels,
   two staircases interleaved; ``g = 1`` elsewhere, one class). Round 0 takes each
   class's first and last width and every ``len(class) // coarse_points``-th one
   (every width with ``exhaustive``).
3. Adaptive rounds, per class of each context, with ``T(w)`` the slot cost:
   an open interval ``(a, b)`` of measured widths (with class members inside) is
   closed as *flat* when ``|T(b) - T(a)| <= tol · max(T(a), T(b))``; otherwise
   its middle member ``m`` is measured. Next round, if ``T(m)`` lies within
   ``tol · T(m)`` of the chord between ``a`` and ``b``, both halves are probed once
   more and closed as *linear* if their midpoints are on their chords too (two
   levels, so evenly spaced steps cannot pass for a line; intervals at most
   ``CONFIRM_ABOVE`` channels wide close at once); otherwise the halves are
   opened like any interval. ``tol`` is ``SweepConfig.tolerance`` or, if larger,
   half the relative IQR of the rows involved (differences within the noise are
   not chased).
4. The overhead term of the family's context: ``calibration`` networks (uniform
   width fractions 1, 3/4, 1/2, 1/4 and random students of every kind) timed
   together, and ``network ≈ fixed + scale · Σ rows`` fitted on them by least
   squares (:func:`fit_overhead`); the points are kept.

Rows already in the LUT are skipped; rows are committed as each group of the
runner finishes, and the rounds depend only on the rows, so a killed sweep
re-run resumes and loses at most the group in flight.
"""

from __future__ import annotations

import itertools
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError
from perfstudent.lut.overhead import fit_overhead
from perfstudent.lut.view import LatencyView, context_key, spec_context
from perfstudent.profiler.chains import Job, chain_job
from perfstudent.profiler.timing import timed_seconds
from perfstudent.students import get_family
from perfstudent.students.sampling import sample_students, uniform_student

if TYPE_CHECKING:
    from perfstudent.lut.fingerprint import Fingerprint
    from perfstudent.lut.store import LatencyTable
    from perfstudent.measurement import Measurement
    from perfstudent.profiler.runner import Runner
    from perfstudent.students.widthspec import WidthSpec

CALIBRATION_FRACTIONS = (1.0, 0.75, 0.5, 0.25)


@dataclass(frozen=True)
class SweepConfig:
    family: str
    input_size: int | None = None
    in_channels: int | None = None
    num_classes: int | None = None
    batch: int = 1
    exhaustive: bool = False
    tolerance: float = 0.03
    coarse_points: int = 4  # grid intervals per class of a series
    overhead: bool = True
    calibration: int = 12   # networks the overhead term is fitted on
    seed: int = 0


@dataclass
class SweepReport:
    measured: int = 0
    skipped: int = 0
    rounds: int = 0
    wall_s: float = 0.0
    timed_s: float = 0.0
    overhead_ms: float | None = None
    overhead_share: float | None = None
    widths: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"measured": self.measured, "skipped": self.skipped, "rounds": self.rounds,
                "wall_s": self.wall_s, "timed_s": self.timed_s, "overhead_ms": self.overhead_ms,
                "overhead_share": self.overhead_share,
                "efficiency": self.wall_s / self.timed_s if self.timed_s > 0 else None}


def class_members(full: int, alignment: int) -> list[list[int]]:
    """Widths ``1..full`` split into the aligned (multiples of ``alignment``) and the others."""
    if alignment <= 1:
        return [list(range(1, full + 1))]
    classes = [[w for w in range(1, full + 1) if (w % alignment == 0) == aligned]
               for aligned in (True, False)]
    return [c for c in classes if c]


def coarse_positions(size: int, points: int) -> list[int]:
    """Positions ``0``, multiples of ``max(1, size // points)`` and ``size - 1``."""
    step = max(1, size // max(1, points))
    return sorted({0, size - 1, *range(step, size, step)})


Interval = tuple[int, int]
#: An on-chord midpoint closes an interval at once if it spans at most this many channels:
#: one step inside it would have put the midpoint off the chord by half its height, so only
#: several steps (AVX2 fp32 kernels step every 8 channels) can fake a line; wider intervals
#: must pass the chord test at two levels.
CONFIRM_ABOVE = 8
#: interval (in positions of a class) -> (its midpoint, whether it only confirms a linear parent)
Probes = dict[Interval, tuple[int, bool]]


def _probe(intervals: list[tuple[Interval, bool]], cost: dict[int, float],
           tol: dict[int, float]) -> Probes:
    """Midpoints of the intervals that are neither flat nor without interior positions."""
    return {(a, b): ((a + b) // 2, confirming) for (a, b), confirming in intervals
            if b - a > 1 and abs(cost[b] - cost[a]) > max(tol[a], tol[b]) * max(cost[a], cost[b])}


def _split(probes: Probes, cost: dict[int, float], tol: dict[int, float], confirm_above: int) -> Probes:
    """One adaptive step for a class, given the costs at last round's midpoints.

    A midpoint on the chord (within the tolerance) of a *confirming* interval closes
    it as linear; a first on-chord midpoint opens both halves as confirming (linear
    must hold at two levels, so evenly spaced steps cannot pass as a line); an
    off-chord midpoint opens both halves as ordinary intervals.
    """
    halves: list[tuple[Interval, bool]] = []
    for (a, b), (m, confirming) in probes.items():
        chord = cost[a] + (cost[b] - cost[a]) * (m - a) / (b - a)
        on_chord = abs(cost[m] - chord) <= max(tol[a], tol[m], tol[b]) * abs(cost[m])
        if not (on_chord and (confirming or b - a <= confirm_above)):
            halves += [((a, m), on_chord), ((m, b), on_chord)]
    return _probe(halves, cost, tol)


@dataclass
class _Series:
    """One context over its slot widths: a representative slot, its chain at full width."""

    chain: Chain               # at full width
    slot: str
    classes: list[list[int]]   # widths by class

    def label(self) -> str:
        return self.chain.label().replace(f"[{self.chain.block.full}/", "[w/")


class _Sweep:
    def __init__(self, table: LatencyTable, runner: Runner, config: SweepConfig,
                 progress: bool) -> None:
        self.table, self.runner, self.config = table, runner, config
        self.fp: Fingerprint = runner.fingerprint()
        self.spec = get_family(config.family).full_spec(config.input_size, config.in_channels,
                                                        config.num_classes)
        self.done = table.keys(self.fp)
        self.report = SweepReport()
        self.bar = tqdm(total=0, desc=f"profile {config.family}", unit="row", file=sys.stderr,
                        disable=not progress, dynamic_ncols=True)

    def series(self) -> list[_Series]:
        g = max(1, self.runner.width_alignment())
        found: dict[Chain, _Series] = {}
        for slot, chain in get_family(self.spec.family).slot_chains(self.spec, self.config.batch).items():
            found.setdefault(chain, _Series(chain, slot, class_members(chain.block.full, g)))
        return list(found.values())

    def _store(self, job: Job, measurement: Measurement) -> None:
        self.table.add(self.fp, job.chain, measurement)
        self.done.add(job.chain.key())
        self.report.measured += 1
        self.bar.update(1)

    def run_round(self, jobs: list[Job]) -> None:
        todo = list({j.chain: j for j in jobs if j.chain.key() not in self.done}.values())
        self.report.skipped += len({j.chain for j in jobs}) - len(todo)
        self.report.rounds += 1
        if todo:
            self.bar.total += len(todo)
            self.bar.set_postfix_str(f"round {self.report.rounds}")
            self.runner.run(todo, self._store)

    def jobs(self, series: _Series, widths: list[int], anchor: bool = False) -> list[Job]:
        chains = [series.chain.at(w) for w in widths]
        if anchor and not series.chain.alone:  # the block alone at full width
            chains.append(Chain(series.chain.block))
        return [chain_job(self.spec, series.slot, c, self.config.batch) for c in chains]

    def run(self) -> SweepReport:
        g = max(1, self.runner.width_alignment())
        walks = [_Walk(series, members, list(range(len(members))) if self.config.exhaustive
                       else coarse_positions(len(members), self.config.coarse_points))
                 for series in self.series() for members in series.classes]
        pending = {i: walk.widths(walk.taken) for i, walk in enumerate(walks)}
        while pending:
            first = self.report.rounds == 0
            self.run_round([job for i, widths in pending.items()
                            for job in self.jobs(walks[i].series, widths, anchor=first)])
            if self.config.exhaustive:
                break
            view = LatencyView(self.fp, self.table.rows(self.fp), smooth=False)
            steps = {i: walk.step(view, self.config.tolerance, max(1, CONFIRM_ABOVE // g))
                     for i, walk in enumerate(walks)}
            pending = {i: widths for i, widths in steps.items() if widths}
        for walk in walks:
            self.report.widths.setdefault(walk.series.label(), []).extend(walk.widths(walk.taken))
        for widths in self.report.widths.values():
            widths.sort()
        return self.report


@dataclass
class _Walk:
    """The adaptive refinement of one class of one context's widths (module docstring, 3)."""

    series: _Series
    members: list[int]          # the class's widths, ascending; positions index this list
    taken: list[int]            # measured positions
    probes: Probes | None = None

    def widths(self, positions: list[int]) -> list[int]:
        return [self.members[p] for p in positions]

    def step(self, view: LatencyView, tolerance: float, confirm_above: int) -> list[int]:
        """After a round: the next widths to measure (none when every interval is closed)."""
        cost, tol = {}, {}
        for p in self.taken:
            chain = self.series.chain.at(self.members[p])
            cost[p] = view.chain_ms(chain)
            tol[p] = max(tolerance, 0.5 * view.measurements[chain].spread)
        if self.probes is None:
            self.probes = _probe([(iv, False) for iv in itertools.pairwise(self.taken)], cost, tol)
        else:
            self.probes = _split(self.probes, cost, tol, confirm_above)
        mids = sorted({m for m, _ in self.probes.values()})
        self.taken = sorted(set(self.taken) | set(mids))
        return self.widths(mids)


def calibration_specs(spec: WidthSpec, count: int, seed: int = 0) -> list[WidthSpec]:
    """The networks an overhead term is fitted on: uniform fractions, then random students."""
    uniform = [uniform_student(spec, f) for f in CALIBRATION_FRACTIONS][:count]
    drawn = sample_students(spec, max(0, count - len(uniform)), seed=10_000 + seed)
    return uniform + [s for _, s in drawn]


def measure_overhead(table: LatencyTable, runner: Runner, spec: WidthSpec, batch: int = 1,
                     count: int = 12, seed: int = 0) -> float:
    """Measure, store and return the overhead term of ``spec``'s context (ms).

    The :func:`calibration_specs` networks are timed together and
    ``network ≈ fixed + scale · Σ rows`` is fitted on them (:func:`fit_overhead`;
    see :mod:`perfstudent.lut.view`). The points are stored with the term, and
    the term's share of the full network's time.
    """
    fp = runner.fingerprint()
    view = LatencyView(fp, table.rows(fp), smooth=False)  # stored: the fit on the rows as measured
    specs = calibration_specs(spec, count, seed)
    points: list[dict[str, Any]] = []
    for probe, net in zip(specs, runner.time_models(specs), strict=True):
        blocks = sum(ms for _, _, ms in view.slot_rows(probe, batch))
        points.append({"widths": dict(probe.widths), "net_ms": net.ms, "blocks_ms": blocks,
                       "residual_ms": net.ms - blocks, "noisy": net.noisy,
                       "samples_ms": list(net.samples_ms)})
    try:  # the smallest student's rows: no fit may predict it at or below 0 ms
        smallest: float | None = sum(
            ms for _, _, ms in view.slot_rows(spec.with_widths({s: 1 for s in spec.widths}), batch))
    except InputError:
        smallest = None
    fixed, scale, how = fit_overhead([(float(p["blocks_ms"]), float(p["net_ms"])) for p in points],
                                     smallest)
    full_ms = float(points[0]["net_ms"])
    share = fixed / full_ms if full_ms > 0 else None
    table.set_overhead(fp, spec_context(spec, batch), fixed,
                       {"points": points, "fixed_ms": fixed, "scale": scale, "fit": how,
                        "share_of_full": share, "full_ms": full_ms})
    return fixed


def sweep(table: LatencyTable, runner: Runner, config: SweepConfig,
          progress: bool = True) -> SweepReport:
    """Fill ``table`` for ``config.family`` with ``runner`` (see the module docstring)."""
    start_wall, start_timed = time.perf_counter(), timed_seconds()
    job = _Sweep(table, runner, config, progress)
    try:
        report = job.run()
        fp, ctx = job.fp, spec_context(job.spec, config.batch)
        if config.overhead:
            overheads = table.overheads(fp)
            if not LatencyView(fp, {}, overheads).has_overhead(job.spec, config.batch):
                job.bar.set_postfix_str("overhead")
                measure_overhead(table, runner, job.spec, config.batch, config.calibration,
                                 config.seed)
                overheads = table.overheads(fp)
            view = LatencyView(fp, {}, overheads)
            report.overhead_ms = view.fixed_ms(job.spec, config.batch)
            report.overhead_share = overheads[context_key(job.spec, config.batch)][1].get("share_of_full")
        table.record_sweep(fp, ctx, "exhaustive" if config.exhaustive else "adaptive",
                           table.count(fp))
    finally:
        job.bar.close()
    report.wall_s = time.perf_counter() - start_wall
    report.timed_s = timed_seconds() - start_timed
    return report
