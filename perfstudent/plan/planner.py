"""The latency-budget planner: per-slot widths of a student for a budget (docs/planner.md).

``make_plan`` builds the planning problem on a latency model (a LUT view),
hands it to a registered strategy (:mod:`perfstudent.plan.strategies`) and
records the result as a :class:`Plan` (JSON ``perfstudent.plan/1``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from perfstudent.durations import format_ms
from perfstudent.errors import InputError
from perfstudent.measurement import Measurement
from perfstudent.plan.problem import LatencyModel, PlanningProblem, build_problem
from perfstudent.plan.saliency import Saliency
from perfstudent.plan.strategies import Choice, StrategyInputs, get_strategy, strategy_names
from perfstudent.records import Record
from perfstudent.students.registry import get_family
from perfstudent.students.widthspec import WidthSpec

if TYPE_CHECKING:
    from torch import nn

SCHEMA = "perfstudent.plan/1"


class InfeasibleBudget(InputError):
    """No student of the family fits the budget; ``smallest_ms`` is the best achievable."""

    def __init__(self, message: str, smallest_ms: float) -> None:
        super().__init__(message)
        self.smallest_ms = smallest_ms


@dataclass(frozen=True)
class SlotCost(Record):
    """One slot of a plan: its width and its block's cost in the model (ms)."""

    slot: str
    width: int
    ms: float


@dataclass(frozen=True)
class SlotRow(Record):
    """One slot on its latency staircase: cost at the planned width, the next step up."""

    slot: str
    width: int
    full: int
    cost_ms: float
    step_top: bool
    next_width: int | None = None
    next_extra_ms: float | None = None


@dataclass(frozen=True)
class SaliencySource(Record):
    """Which saliency a plan was made with: the teacher's identity and the data it saw."""

    teacher: dict[str, Any] = field(default_factory=dict)
    batches: int = 0
    samples: int = 0


@dataclass(frozen=True)
class Verification(Record):
    """``plan --verify``: the planned student measured end to end."""

    measured_ms: float
    within_budget: bool
    protocol: str | None = None
    measurement: Measurement | None = None


@dataclass(frozen=True)
class Enhancement(Record):
    """``perfstudent enhance``: the student before, the tolerance, what the widening gained.

    ``tolerance`` is as given (``1%`` of the prediction before, or a duration such as
    ``20us``), ``tolerance_ms`` what it allowed; ``gained`` the channels added per slot;
    ``measured_before`` / ``measured_after`` the two students end to end (``--measure``).
    """

    before: WidthSpec
    predicted_before_ms: float
    tolerance: str
    tolerance_ms: float
    gained: dict[str, int]
    source_strategy: str | None = None
    source_budget_ms: float | None = None
    measured_before: Measurement | None = None
    measured_after: Measurement | None = None


@dataclass
class Plan(Record):
    """A planned student: widths plus what they were planned for (``perfstudent.plan/1``)."""

    SCHEMA = SCHEMA

    strategy: str
    budget_ms: float
    margin_ms: float
    spec: WidthSpec
    predicted_ms: float
    overhead_ms: float                 # the model's fixed term (LatencyView.fixed_ms)
    per_slot: list[SlotCost]           # each slot block's cost
    saliency_kept: float
    device: str | None = None
    backend: str | None = None
    threads: int | None = None
    fingerprint: dict[str, Any] | str | None = None
    slots: list[SlotRow] = field(default_factory=list)
    grid_ms: float = 0.0
    multiplier: float | None = None
    saliency: SaliencySource | None = None
    verified: Verification | None = None
    warnings: list[str] = field(default_factory=list)
    margin_note: str | None = None
    macs: int | None = None            # torch-pruning: the pruned teacher's MACs
    enhanced: Enhancement | None = None

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """plan/1 files from before per-slot costs: their ``per_layer`` (the per-layer model of
        that time, which no slot cost can be rebuilt from) is dropped, ``per_slot`` left empty,
        and a ``verified`` measurement in that time's form (no ``samples_ms``) dropped, its
        figure and verdict kept."""
        if version == 1:
            data.pop("per_layer", None)
            data.setdefault("per_slot", [])
            verified = data.get("verified")
            if isinstance(verified, dict) and "samples_ms" not in (verified.get("measurement") or {}):
                data["verified"] = {k: v for k, v in verified.items() if k != "measurement"}
        return super().migrate(data, version)


def channel_scores(base: WidthSpec, saliency: Saliency | None) -> dict[str, list[float]]:
    """Per slot, per channel: the Fisher scores of ``saliency`` (checked against ``base``), or 1
    for every channel (the plan then maximises channels kept)."""
    if saliency is None:
        return {slot: [1.0] * full for slot, full in base.widths.items()}
    saliency.check_matches(base.family, base.input_size, get_family(base.family).full_widths())
    return saliency.slots


def _fingerprint_json(fingerprint: Any) -> Any:
    for attr in ("to_dict", "as_dict"):
        if hasattr(fingerprint, attr):
            return getattr(fingerprint, attr)()
    if dataclasses.is_dataclass(fingerprint) and not isinstance(fingerprint, type):
        return dataclasses.asdict(fingerprint)
    return fingerprint if isinstance(fingerprint, (dict, str, type(None))) else str(fingerprint)


def _identity(fingerprint: Any, key: str) -> Any:
    value = fingerprint.get(key) if isinstance(fingerprint, dict) else getattr(fingerprint, key, None)
    return value if isinstance(value, (str, int)) else None


def _slot_report(problem: PlanningProblem, widths: dict[str, int]) -> list[SlotRow]:
    rows = []
    for c in problem.curves:
        w = widths[c.slot]
        nxt = c.next_step(w)
        rows.append(SlotRow(c.slot, w, c.full, float(c.cost_ms[w - 1]), bool(c.step_top(w)), nxt,
                            None if nxt is None else float(c.cost_ms[nxt - 1] - c.cost_ms[w - 1])))
    return rows


def make_plan(strategy: str, budget_ms: float, view: LatencyModel, base: WidthSpec,
              saliency: Saliency | None = None, margin_ms: float = 0.0, *,
              device: str | None = None, backend: str | None = None, threads: int | None = None,
              resolution_ms: float = 1e-3, max_cells: int = 20_000,
              teacher: nn.Module | None = None) -> Plan:
    """Plan widths of ``base``'s family for ``budget_ms`` (ms) on ``view``'s latencies.

    ``teacher`` (the trained full-width network of ``base``) is needed by a strategy that
    ``needs_teacher`` (torch-pruning) and ignored by the others. Raises
    :class:`InfeasibleBudget` (an InputError) with the smallest achievable latency when no
    student fits ``budget_ms - margin_ms``.
    """
    chooser = get_strategy(strategy)
    chooser.check_available()
    if chooser.needs_saliency and saliency is None:
        raise InputError(f"strategy {strategy} needs a saliency file (it removes channels in Fisher "
                         "order)")
    if chooser.needs_teacher and teacher is None:
        raise InputError(f"strategy {strategy} needs the trained teacher (--teacher RUN)")
    if not (math.isfinite(budget_ms) and budget_ms > 0):
        raise InputError(f"budget must be positive, got {budget_ms} ms")
    if not (math.isfinite(margin_ms) and 0 <= margin_ms < budget_ms):
        raise InputError(f"margin must be in [0, budget), got {margin_ms} ms")
    scores = channel_scores(base, saliency)
    problem = build_problem(view, base, scores, budget_ms - margin_ms, resolution_ms, max_cells)
    choice = chooser.solve(problem, StrategyInputs(scores, teacher))
    if choice is None:
        smallest = problem.smallest_ms()
        raise InfeasibleBudget(
            f"budget {format_ms(budget_ms)} (margin {format_ms(margin_ms)}) is infeasible for "
            f"{base.family} at {base.input_size}px with strategy {strategy}: the smallest achievable "
            f"predicted latency is {format_ms(smallest)}", smallest)
    return plan_record(strategy, budget_ms, margin_ms, view, problem, choice, saliency,
                       device, backend, threads)


def plan_record(strategy: str, budget_ms: float, margin_ms: float, view: LatencyModel,
                problem: PlanningProblem, choice: Choice, saliency: Saliency | None,
                device: str | None = None, backend: str | None = None,
                threads: int | None = None) -> Plan:
    """The :class:`Plan` of ``choice``'s widths on ``problem``: the prediction, each slot's cost
    and place on its staircase, the saliency kept, where the latencies come from."""
    widths = choice.widths
    spec = problem.base.with_widths(widths)
    costs = {c.slot: float(c.cost_ms[widths[c.slot] - 1]) for c in problem.curves}
    per_slot = [SlotCost(s, widths[s], ms) for s, ms in costs.items()]
    fixed = float(view.fixed_ms(spec))
    fp = view.fingerprint
    return Plan(
        strategy, budget_ms, margin_ms, spec, fixed + sum(costs.values()), fixed,
        per_slot, problem.kept_of(widths), device or _identity(fp, "device"),
        backend or _identity(fp, "backend"), threads if threads is not None else _identity(fp, "threads"),
        _fingerprint_json(fp), _slot_report(problem, widths), problem.grid_ms, choice.multiplier,
        None if saliency is None else SaliencySource(saliency.teacher, saliency.batches,
                                                     saliency.samples),
        macs=choice.macs,
    )


DEFAULT_COVERAGE = 0.95


def conformal_margin(residuals: list[float], budget_ms: float,
                     coverage: float = DEFAULT_COVERAGE) -> tuple[float, str]:
    """``(margin_ms, note)``: how far below ``budget_ms`` to plan, from validation residuals.

    ``lut validate`` stores, per student, the residual ``r = measured / predicted - 1``.
    If a new plan's residual is exchangeable with the stored ones, split conformal
    prediction gives: with the ``n`` residuals sorted and ``k = ceil((n + 1) ·
    coverage)``, a new ``r <= r_(k)`` with probability at least ``coverage``. Planning
    to ``budget / (1 + r_(k))`` then keeps the measured latency within the budget
    with that probability: ``margin = budget · r_(k) / (1 + r_(k))`` (0 when the LUT
    over-predicts, ``r_(k) <= 0``). With ``k > n`` (too few residuals) the largest is
    used instead, and the note says so.
    """
    if not 0 < coverage < 1:
        raise InputError(f"coverage must be in (0, 1), got {coverage}")
    clean = sorted(r for r in residuals if math.isfinite(r))
    if not clean:
        return 0.0, "auto: no validation residuals in the LUT (run `perfstudent lut validate`), margin 0"
    n = len(clean)
    k = math.ceil((n + 1) * coverage)
    bound = clean[min(k, n) - 1]
    margin = budget_ms * bound / (1 + bound) if bound > 0 else 0.0
    if k > n:
        return margin, (f"auto: only {n} validation residuals, too few for a {coverage:.0%} bound; "
                        f"used the largest, {bound:+.1%}")
    return margin, (f"auto: {coverage:.0%} of students measure within the budget (conformal bound "
                    f"{bound:+.1%} from {n} validation residuals)")


def plan_margin(residuals: list[float], kinds: list[str] | None, strategy: str, budget_ms: float,
                coverage: float = DEFAULT_COVERAGE) -> tuple[float, str]:
    """``(margin_ms, note)`` for a plan of ``strategy``: the larger of two conformal margins.

    The planner's picks are not exchangeable with random students: it chooses, among
    students of equal predicted latency, those the LUT favours, so its errors lean
    optimistic (the winner's curse; in the latency-truth validations ``plan-perf``
    students measured +0.1% to +11.2% above prediction on average, random ones -8.6% to
    +1.8%). So the margin is the larger of :func:`conformal_margin` over every stored
    residual and over the residuals of planner outputs (``kinds`` ``plan-<strategy>``,
    else every ``plan-*``; with too few of them for the coverage, their largest). Without
    ``kinds`` (a validation stored before they were) only the first applies.
    """
    margin, note = conformal_margin(residuals, budget_ms, coverage)
    if not kinds or len(kinds) != len(residuals):
        return margin, note
    own = [r for r, k in zip(residuals, kinds, strict=True) if k == f"plan-{strategy}"]
    label = f"{strategy}'s own plans"
    if not own:
        own = [r for r, k in zip(residuals, kinds, strict=True) if k.startswith("plan-")]
        label = "the planner's outputs"
    if not own:
        return margin, note
    planned, planned_note = conformal_margin(own, budget_ms, coverage)
    if planned <= margin:
        return margin, note
    return planned, f"{planned_note.replace('validation residuals', 'residuals of ' + label)}" \
                    f" (larger than the bound over all {len(residuals)}: the planner's picks lean optimistic)"


def plan_summary(plan: Plan) -> str:
    """Human summary: budget vs prediction and each slot on its latency staircase."""
    lines = [
        f"{plan.strategy} plan for {plan.spec.family} at {plan.spec.input_size}px on "
        f"{plan.device}/{plan.backend}/t{plan.threads}: predicted {format_ms(plan.predicted_ms)} "
        f"(budget {format_ms(plan.budget_ms)}, margin {format_ms(plan.margin_ms)}), "
        f"saliency kept {plan.saliency_kept:.1%}"
        + ("" if plan.macs is None else f", {plan.macs / 1e6:.4g} M MACs"),
        f"  {'slot':<12}{'width':>11}{'cost':>12}  staircase",
    ]
    if plan.margin_note:
        lines.insert(1, f"  margin: {plan.margin_note}")
    for row in plan.slots:
        where = "step top" if row.step_top else "mid-step"
        if row.next_width is not None and row.next_extra_ms is not None:
            where += f"; next step {row.next_width} (+{format_ms(row.next_extra_ms)})"
        lines.append(f"  {row.slot:<12}{row.width:>5} / {row.full:<4}"
                     f"{format_ms(row.cost_ms):>12}  {where}")
    return "\n".join(lines)


def total_saliency_kept(plan: Plan, saliency: Saliency) -> float:
    """Saliency kept by ``plan``'s widths under ``saliency`` (a fraction)."""
    return saliency.kept(plan.spec.widths)


__all__ = ["Enhancement", "InfeasibleBudget", "Plan", "SaliencySource", "SlotCost", "SlotRow",
           "Verification", "channel_scores", "conformal_margin", "make_plan", "plan_margin", "plan_record",
           "plan_summary", "strategy_names", "total_saliency_kept"]
