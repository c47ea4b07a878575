"""Prediction accuracy a sceptic accepts: students of several kinds, three predictors, a noise floor.

Students (:func:`validation_students`): random ones of every kind of
:mod:`perfstudent.students.sampling` (each slot uniform; one fraction per
stage; a few slots full and the rest thin) and the planner's own outputs
(``perf`` and ``uniform``, and ``pruned`` with a saliency file) at budgets
spread between the smallest plannable student and the full network.

Everything is measured together with the interleaved protocol, in two passes
(A, then B): the students, five uniformly thinned calibration students, and,
for the isolated-row predictor, every distinct layer of the students alone.
A student's measured latency is the protocol's estimator over the samples of
both passes; A against B is the *noise floor*: how well the same students
measured twice agree, the best any predictor can be scored here.

Predictors, side by side:

- ``lut``: :meth:`LatencyView.predict` (blocks in context, smoothed, + the overhead term);
  ``lut, unsmoothed`` beside it reads the same rows as measured;
- ``isolated``: the sum of every layer timed alone, no overhead term (what
  NetAdapt-style tables do);
- ``macs``: ``a + b · MACs``, least squares on the uniformly thinned students
  (what MAC-budgeted pruning assumes).

Metrics: share within ±5% and ±10% of measured, MAPE (mean |pred/meas - 1|),
bias (mean signed error), Spearman ρ (Pearson correlation of the ranks).

*Drift since the sweep*: the calibration networks the sweep fitted the overhead
term on are measured again with the students; ``now / then - 1`` says how much
the machine (or the runtime's state) moved between profiling and validating,
the part of the LUT's error that no model of the network can remove. As a
diagnostic, not a verdict, the report adds ``lut, drift-corrected``: the LUT's
predictions times ``1 + median drift``, i.e. what the LUT's model would score had
the machine not moved.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from perfstudent.errors import InputError
from perfstudent.lut import Fingerprint, LatencyTable, spec_context
from perfstudent.lut.view import LatencyView, context_key
from perfstudent.measurement import Measurement, TimingProtocol, check_estimator
from perfstudent.plan.planner import InfeasibleBudget, make_plan
from perfstudent.plan.problem import build_problem
from perfstudent.plan.strategies import get_strategy, strategy_names
from perfstudent.records import Record
from perfstudent.resources import check_memory
from perfstudent.students import network_layers
from perfstudent.students.memory import memory_bytes
from perfstudent.students.sampling import KINDS, sample_students, uniform_student

if TYPE_CHECKING:
    from perfstudent.convshape import ConvShape
    from perfstudent.pipeline import Target
    from perfstudent.plan.saliency import Saliency
    from perfstudent.profiler.backends import Backend
    from perfstudent.students.widthspec import WidthSpec

SCHEMA = "perfstudent.validation/3"
PREDICTORS = ("lut", "isolated", "macs")
CALIBRATION_FRACTIONS = (1.0, 0.8, 0.6, 0.45, 0.3)


def spearman(x: list[float], y: list[float]) -> float:
    import pandas as pd

    if len(x) < 2:
        return float("nan")
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    return float(np.corrcoef(rx, ry)[0, 1])


def scores(predicted: list[float], measured: list[float]) -> dict[str, float]:
    """within_5pct, within_10pct, mape_pct, bias_pct, spearman of ``predicted`` against ``measured``."""
    err = np.asarray(predicted) / np.asarray(measured) - 1.0
    return {"within_5pct": float(np.mean(np.abs(err) <= 0.05)),
            "within_10pct": float(np.mean(np.abs(err) <= 0.10)),
            "mape_pct": float(100 * np.abs(err).mean()), "bias_pct": float(100 * err.mean()),
            "max_abs_err_pct": float(100 * np.abs(err).max()),
            "spearman": spearman(list(predicted), list(measured))}


def plan_students(view: LatencyView, base: WidthSpec, count: int,
                  saliency: Saliency | None = None) -> list[tuple[str, WidthSpec]]:
    """The planner's outputs at ``count`` budgets per strategy, between smallest and full."""
    if count < 1:
        return []
    scores_ = {s: [1.0] * w for s, w in base.widths.items()}
    smallest = build_problem(view, base, scores_, 1e9).smallest_ms()
    full = view.predict(base).total_ms
    budgets = np.linspace(smallest + 0.15 * (full - smallest), full * 0.95, count)
    out = []
    for strategy in strategy_names():
        chooser = get_strategy(strategy)
        if (chooser.needs_saliency and saliency is None) or chooser.needs_teacher:
            continue  # no teacher here: torch-pruning's students are not among these
        for budget in budgets:
            try:
                plan = make_plan(strategy, float(budget), view, base, saliency)
            except InfeasibleBudget:
                continue
            out.append((f"plan-{strategy}", plan.spec))
    return out


def validation_students(view: LatencyView, base: WidthSpec, samples: int, seed: int = 0,
                        saliency: Saliency | None = None,
                        plans: bool = True) -> list[tuple[str, WidthSpec]]:
    """About ``samples`` students: random ones of every kind, then the planner's outputs."""
    budgets = max(1, samples // 12) if plans else 0
    planned = plan_students(view, base, budgets, saliency)
    drawn = sample_students(base, max(len(KINDS), samples - len(planned)), seed, KINDS)
    return drawn + planned


@dataclass(frozen=True)
class ValidatedStudent(Record):
    """One student of a validation: measured (both passes joined, and each) and predicted, in ms."""

    kind: str
    widths: dict[str, int]
    measured_ms: float
    pass_a_ms: float
    pass_b_ms: float
    predicted_ms: dict[str, float]  # per predictor


@dataclass
class ValidationReport(Record):
    """What ``lut validate`` found (``perfstudent.validation/3``; ``summary`` is derived).

    Version 3 stores ``drift`` (per calibration network measured again: now / at the
    sweep - 1); version 2 kept only its summary, so a /2 report reads back without it.
    """

    SCHEMA = SCHEMA
    DERIVED = ("summary",)

    fingerprint: dict[str, Any]
    family: str
    input_size: int
    estimator: str
    students: list[ValidatedStudent] = field(default_factory=list)
    macs_fit: dict[str, float] = field(default_factory=dict)
    drift: list[float] = field(default_factory=list)

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        if version == 2:
            return {**data, "drift": []}
        return super().migrate(data, version)

    @property
    def kinds(self) -> list[str]:
        return [s.kind for s in self.students]

    @property
    def measured_ms(self) -> list[float]:
        return [s.measured_ms for s in self.students]

    @property
    def predicted(self) -> dict[str, list[float]]:
        """Per predictor, its prediction of every student (in the students' order)."""
        names = self.students[0].predicted_ms if self.students else {}
        return {name: [s.predicted_ms[name] for s in self.students] for name in names}

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"samples": len(self.measured_ms)}
        for name, values in self.predicted.items():
            out[name] = scores(values, self.measured_ms)
        out["noise_floor"] = scores([s.pass_a_ms for s in self.students],
                                    [s.pass_b_ms for s in self.students])
        if self.drift:
            out["drift_since_sweep_pct"] = {"median": float(100 * np.median(self.drift)),
                                            "min": float(100 * min(self.drift)),
                                            "max": float(100 * max(self.drift)),
                                            "networks": len(self.drift)}
        return out

    def residuals(self) -> list[float]:
        """measured / LUT-predicted - 1, per student (``plan --margin auto`` reads these)."""
        return [s.measured_ms / s.predicted_ms["lut"] - 1 for s in self.students]

    def text(self) -> str:
        s = self.summary()
        kinds = ", ".join(f"{k} {self.kinds.count(k)}" for k in dict.fromkeys(self.kinds))
        lines = [f"{self.family} @{self.input_size}: {s['samples']} students ({kinds}), "
                 f"estimator {self.estimator}",
                 f"  {'predictor':<22}{'±5%':>6}{'±10%':>7}{'MAPE':>8}{'bias':>8}{'ρ':>8}"]
        for name in [*self.predicted, "noise_floor"]:
            r = s[name]
            label = "noise floor" if name == "noise_floor" else name
            lines.append(f"  {label:<22}{100 * r['within_5pct']:>5.0f}%{100 * r['within_10pct']:>6.0f}%"
                         f"{r['mape_pct']:>7.2f}%{r['bias_pct']:>+7.2f}%{r['spearman']:>8.3f}")
        lines.append("  (noise floor: the same students measured twice, pass A against pass B)")
        if "drift_since_sweep_pct" in s:
            d = s["drift_since_sweep_pct"]
            lines.append(f"  drift since the sweep: {d['median']:+.1f}% (range {d['min']:+.1f}% to "
                         f"{d['max']:+.1f}%) over its {d['networks']} calibration networks measured again")
        return "\n".join(lines)


def _sweep_networks(view: LatencyView, base: WidthSpec) -> list[tuple[WidthSpec, float]]:
    """The calibration networks the sweep measured for ``base``'s context, and their ms then."""
    found = view.overheads.get(context_key(base))
    points = found[1].get("points", []) if found else []
    out = []
    for p in points:
        try:
            out.append((base.with_widths(p["widths"]), float(p["net_ms"])))
        except (KeyError, TypeError, ValueError, InputError):
            continue  # an older or foreign record: no drift figure from it
    return out


def _macs(spec: WidthSpec) -> int:
    return sum(layer.shape.macs for layer in network_layers(spec))


def _passes(backend: Backend, groups: list[list[Any]], protocol: TimingProtocol,
            progress: bool) -> tuple[list[Measurement], list[Measurement]]:
    """Two passes over ``groups`` (lists of prepared items), each group timed together."""
    bar = tqdm(total=2 * sum(len(g) for g in groups), desc="validate", unit="item",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)
    passes: list[list[Measurement]] = [[], []]
    try:
        for out in passes:
            for group in groups:
                out += backend.measure(group, protocol)
                bar.update(len(group))
    finally:
        bar.close()
    return passes[0], passes[1]


def _shape_bytes(shape: ConvShape) -> int:
    """One layer timed alone: its input, output and weights, float32 (a lower bound)."""
    weights = (shape.cin // shape.groups) * shape.kernel ** 2 * shape.cout
    return 4 * shape.batch * (shape.cin * shape.height * shape.width
                              + shape.cout * shape.out_height * shape.out_width) + 4 * weights


def _joined(a: Measurement, b: Measurement) -> float:
    both = Measurement(a.samples_ms + b.samples_ms, a.estimator, a.inner)
    return both.ms


def validate(view: LatencyView, backend: Backend, base: WidthSpec, samples: int,
             protocol: TimingProtocol, seed: int = 0, progress: bool = True,
             saliency: Saliency | None = None, predictors: tuple[str, ...] = PREDICTORS,
             plans: bool = True) -> ValidationReport:
    """Predict and measure about ``samples`` students of ``base``'s family (module docstring)."""
    unknown = set(predictors) - set(PREDICTORS)
    if unknown or "lut" not in predictors:
        raise InputError(f"predictors must include lut and be among {', '.join(PREDICTORS)}")
    students = validation_students(view, base, samples, seed, saliency, plans)
    lut = [view.predict(spec).total_ms for _, spec in students]  # fail fast on a missing row
    calibration = [uniform_student(base, f) for f in CALIBRATION_FRACTIONS] if "macs" in predictors else []
    shapes: list[ConvShape] = []
    if "isolated" in predictors:
        shapes = list(dict.fromkeys(layer.shape for _, s in students for layer in network_layers(s)))
    then = _sweep_networks(view, base)
    specs = [s for _, s in students] + calibration + [s for s, _ in then]
    # every network and layer is prepared before the first pass: refuse before building any
    check_memory(sum(memory_bytes(s) for s in specs) + sum(_shape_bytes(sh) for sh in shapes),
                 f"validating {len(specs)} networks and {len(shapes)} layers together")
    size = protocol.group
    groups = [[backend.prepare_model(s) for s in specs[i:i + size]] for i in range(0, len(specs), size)]
    groups += [[backend.prepare_shape(sh) for sh in shapes[i:i + size]]
               for i in range(0, len(shapes), size)]
    a, b = _passes(backend, groups, protocol, progress)
    n = len(students)
    predicted: dict[str, list[float]] = {"lut": lut}
    if "isolated" in predictors:
        iso = {sh: _joined(x, y) for sh, x, y in zip(shapes, a[len(specs):], b[len(specs):],
                                                    strict=True)}
        predicted["isolated"] = [sum(iso[layer.shape] for layer in network_layers(s))
                                 for _, s in students]
    m = n + len(calibration)
    drift = [_joined(x, y) / ms - 1 for (_, ms), x, y in zip(then, a[m:len(specs)], b[m:len(specs)],
                                                             strict=True)]
    if drift:
        factor = 1 + float(np.median(drift))
        predicted["lut, drift-corrected"] = [p * factor for p in lut]
    if view.smooth:  # the same rows as measured, before smoothing: what smoothing changed
        raw = LatencyView(view.fingerprint, view.measurements, view.overheads, smooth=False)
        predicted["lut, unsmoothed"] = [raw.predict(spec).total_ms for _, spec in students]
    macs_fit: dict[str, float] = {}
    if "macs" in predictors:
        cal_ms = [_joined(x, y) for x, y in zip(a[n:m], b[n:m], strict=True)]
        slope, intercept = np.polyfit([_macs(s) for s in calibration], cal_ms, 1)
        macs_fit = {"ms_per_gmac": float(slope * 1e9), "intercept_ms": float(intercept)}
        predicted["macs"] = [float(intercept + slope * _macs(s)) for _, s in students]
    results = [ValidatedStudent(kind, dict(spec.widths), _joined(x, y), x.ms, y.ms,
                                {name: values[i] for name, values in predicted.items()})
               for i, ((kind, spec), x, y) in enumerate(zip(students, a[:n], b[:n], strict=True))]
    return ValidationReport(view.fingerprint.to_dict(), base.family, base.input_size,
                            protocol.estimator, results, macs_fit, drift)


def validate_lut(target: Target, lut: Path | None, base: WidthSpec, samples: int, seed: int = 0, *,
                 saliency: Saliency | None = None, predictors: tuple[str, ...] = PREDICTORS,
                 plans: bool = True, estimator: str | None = None,
                 progress: bool = True) -> tuple[ValidationReport, bool]:
    """The use case: validate the LUT at ``lut`` for ``target``; store the residuals in it.

    ``estimator`` re-reads the LUT's raw samples and times the students with it.
    Returns the report and whether the residuals could be stored (a read-only LUT
    is validated all the same).
    """
    protocol = target.timing()
    if estimator is not None:
        protocol = replace(protocol, estimator=check_estimator(estimator))
    backend = target.make_backend()
    try:
        with LatencyTable.open(lut, create=False) as table:
            fp = Fingerprint.for_backend(backend)
            view = table.view(fp)
            if estimator is not None:
                view = LatencyView(fp, table.rows(fp), table.overheads(fp), estimator)
        report = validate(view, backend, base, samples, protocol, seed, progress, saliency,
                          predictors, plans)
    finally:
        backend.close()
    try:
        with LatencyTable.open(lut, create=False, readonly=False) as table:
            table.add_validation(fp, spec_context(base), {"residuals": report.residuals(),
                                                          "kinds": report.kinds,
                                                          "students": [
                                                              {"widths": st.widths,
                                                               "measured_ms": st.measured_ms}
                                                              for st in report.students],
                                                          "estimator": report.estimator,
                                                          "summary": report.summary()})
    except InputError:
        return report, False
    return report, True
