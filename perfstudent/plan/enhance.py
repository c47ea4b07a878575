"""Performance enhancement of a given student: widen its slots where latency allows.

The paper's enhancement (Turner et al., "Distilling with Performance Enhanced Students"):
latency is a staircase in width, so a student from any source (a Fisher-pruned or
Torch-Pruning plan, a user's own WidthSpec) usually has slots in the middle of a step,
where more channels cost (almost) nothing.

With the model every strategy plans on (docs/planner.md, slot costs),
``predicted(S) = fixed + Σ_s T_s(w_s)``, widening slot ``s`` from ``w_s`` to ``w'_s`` costs
``Δ_s = T_s(w'_s) − T_s(w_s)``. ``enhance`` chooses ``w_s ≤ w'_s ≤ full_s`` for every slot
to maximise the channels gained ``Σ_s (w'_s − w_s)`` (with a saliency file: the Fisher
score kept) subject to ``Σ_s max(Δ_s, 0) ≤ τ``, the **tolerance**:

- ``1%``: τ is 1% of the student's own predicted latency before enhancement (any
  percentage in [0, 100]);
- a duration (``20us``, ``0.02ms``): τ absolute (:func:`perfstudent.durations.parse_duration_ms`);
- ``0``: only widening that costs nothing (to the top of each slot's step).

A width the model says is cheaper than the current one (``Δ < 0``, a noisy or odd LUT) may
be taken, but its saving never pays for widening another slot, so the enhanced student is
never predicted slower than ``predicted(S) + τ``. It is solved exactly as a multiple-choice
knapsack (:mod:`perfstudent.plan.knapsack`) on a grid of ``q = τ / 20 000`` ms with costs
rounded up, so the bound holds on the unrounded model; slots are never narrowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perfstudent.durations import format_ms, parse_duration_ms
from perfstudent.errors import InputError
from perfstudent.plan.knapsack import FloatArray, IntArray, pareto_candidates, solve_mckp
from perfstudent.plan.planner import Enhancement, Plan, channel_scores, plan_record
from perfstudent.plan.problem import LatencyModel, PlanningProblem, build_problem
from perfstudent.plan.saliency import Saliency
from perfstudent.plan.strategies import Choice
from perfstudent.students.registry import get_family
from perfstudent.students.widthspec import WidthSpec

#: Grid cells over the tolerance: the rounding leaves at most S·τ/20 000 of τ unused.
MAX_CELLS = 20_000
#: A tolerance below this (a femtosecond) is zero: only free widening.
MIN_TOLERANCE_MS = 1e-12
_EPS = 1e-9
SUFFIX = "+enhance"


@dataclass(frozen=True)
class Tolerance:
    """How much predicted latency the widening may add: a fraction of the student's own
    prediction, or an absolute time in ms. ``text`` is how the user wrote it."""

    text: str
    fraction: float | None = None
    ms: float | None = None

    def of(self, predicted_ms: float) -> float:
        """τ in ms for a student predicted at ``predicted_ms``."""
        return self.ms if self.ms is not None else (self.fraction or 0.0) * predicted_ms


def parse_tolerance(text: str) -> Tolerance:
    """``"1%"`` (of the student's prediction, 0-100), or a duration (``"20us"``, ``"0.02ms"``,
    ``"0"``); anything else an InputError."""
    stripped = text.strip()
    if not stripped.endswith("%"):
        return Tolerance(stripped, ms=parse_duration_ms(stripped, "tolerance", allow_zero=True))
    try:
        percent = float(stripped[:-1])
    except ValueError:
        percent = math.nan
    if not (math.isfinite(percent) and 0 <= percent <= 100):
        raise InputError(f"tolerance {text!r} is not a percentage in [0, 100] (e.g. 1%) nor a "
                         "duration (e.g. 20us)")
    return Tolerance(stripped, fraction=percent / 100)


def _candidates(costs: FloatArray, kept: FloatArray, width: int,
                grid: float) -> tuple[IntArray, IntArray, FloatArray]:
    """One slot's widths ``width..full`` that are worth choosing: (widths, units, values)."""
    extra = np.maximum(costs[width - 1:] - costs[width - 1], 0.0)
    units = np.ceil(extra / grid - _EPS).astype(np.int64)
    units[extra > 0] = np.maximum(units[extra > 0], 1)  # only a free widening is free
    values = kept[width - 1:]
    keep = pareto_candidates(units, values)
    return keep + width, units[keep], values[keep]


def widen(problem: PlanningProblem, widths: dict[str, int], tolerance_ms: float) -> dict[str, int]:
    """The widths ``w'_s ≥ widths[s]`` that keep the most (``problem``'s scores: channels or
    saliency) with ``Σ_s max(T_s(w'_s) − T_s(w_s), 0) ≤ tolerance_ms``; exact on the grid."""
    some = tolerance_ms >= MIN_TOLERANCE_MS
    grid = tolerance_ms / MAX_CELLS if some else 1.0
    capacity = MAX_CELLS if some else 0
    options = [_candidates(c.cost_ms, c.kept, widths[c.slot], grid) for c in problem.curves]
    chosen = solve_mckp([o[1] for o in options], [o[2] for o in options], capacity)
    if chosen is None:  # cannot happen: keeping every width costs 0 units
        raise AssertionError("the unchanged student must fit its own tolerance")
    return {c.slot: int(o[0][k]) for c, o, k in zip(problem.curves, options, chosen, strict=True)}


def predicted_ms(view: LatencyModel, spec: WidthSpec) -> float:
    """``fixed + Σ_s T_s(w_s)``: the planner's prediction of ``spec`` (ms)."""
    fixed = float(view.fixed_ms(spec))  # first: a LUT without this family names the profile command
    return fixed + sum(float(view.slot_ms(spec, s, w)) for s, w in spec.widths.items())


def enhance(view: LatencyModel, spec: WidthSpec, tolerance: Tolerance,
            saliency: Saliency | None = None, source: Plan | None = None, *,
            device: str | None = None, backend: str | None = None,
            threads: int | None = None) -> Plan:
    """The enhanced student of ``spec`` as a :class:`Plan` (``source``: the plan it came from).

    The plan's ``budget_ms`` is the limit the widening was held to, ``predicted before + τ``
    (margin 0); ``enhanced`` records the student before, the tolerance and the gains.
    """
    base = get_family(spec.family).full_spec(spec.input_size, spec.in_channels, spec.num_classes)
    scores = channel_scores(base, saliency)
    before = predicted_ms(view, spec)
    tol = tolerance.of(before)
    problem = build_problem(view, base, scores, before + tol)
    widths = widen(problem, spec.widths, tol)
    name = "enhance" if source is None else source.strategy.removesuffix(SUFFIX) + SUFFIX
    plan = plan_record(name, before + tol, 0.0, view, problem, Choice(widths), saliency,
                       device, backend, threads)
    plan.enhanced = Enhancement(
        spec, before, tolerance.text, tol, {s: widths[s] - w for s, w in spec.widths.items()},
        None if source is None else source.strategy, None if source is None else source.budget_ms)
    if source is not None:
        plan.warnings += _source_warnings(plan, source)
    return plan


def _source_warnings(plan: Plan, source: Plan) -> list[str]:
    """What the user should know about the enhanced plan against the plan it came from."""
    out = []
    if plan.predicted_ms > source.budget_ms - source.margin_ms:
        out.append(f"the enhanced student is predicted at {format_ms(plan.predicted_ms)}, above "
                   f"the source plan's budget {format_ms(source.budget_ms)} less its margin "
                   f"{format_ms(source.margin_ms)}")
    if source.fingerprint is not None and source.fingerprint != plan.fingerprint:
        out.append("the source plan was made on another LUT fingerprint (device, backend, "
                   "threads or settings) than this one")
    return out


def enhance_summary(plan: Plan) -> str:
    """Channels gained per slot and in total, predicted (and measured) latency before/after."""
    e = plan.enhanced
    if e is None:
        raise InputError("not an enhanced plan")
    gained = sum(e.gained.values())
    lines = [f"  {'slot':<12}{'before':>8}{'after':>8}{'gained':>8}"]
    lines += [f"  {s:<12}{w:>8}{plan.spec.widths[s]:>8}{e.gained[s]:>+8}"
              for s, w in e.before.widths.items() if e.gained[s]]
    total = sum(e.before.widths.values())
    lines.append(f"channels gained: {gained} ({gained / total:+.1%} of {total}) in "
                 f"{sum(1 for g in e.gained.values() if g)} of {len(e.gained)} slots")
    lines.append(f"predicted: {format_ms(e.predicted_before_ms)} -> {format_ms(plan.predicted_ms)} "
                 f"({format_ms(plan.predicted_ms - e.predicted_before_ms)} of a tolerance of "
                 f"{format_ms(e.tolerance_ms)}, {e.tolerance})")
    if e.measured_before is not None and e.measured_after is not None:
        b, a = e.measured_before.ms, e.measured_after.ms
        lines.append(f"measured: {format_ms(b)} -> {format_ms(a)} ({a / b - 1:+.1%})")
    return "\n".join(lines)
