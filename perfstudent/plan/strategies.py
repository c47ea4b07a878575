"""Planning strategies: registered objects behind one interface (as Torch-Pruning's ``Importance``).

A :class:`Strategy` turns a :class:`~perfstudent.plan.problem.PlanningProblem`
(slot latency curves on the grid, the capacity) and the per-slot channel
scores into one width per slot, or None when nothing fits. Every strategy plans
on the same rounded model (:mod:`perfstudent.plan.problem`), so they are
compared at equal predicted latency. Adding one is one decorated class; the
command line, experiment configs and fronts read the list from here
(:func:`strategy_names`).

- ``perf``: the performance-enhanced student. Maximise the saliency kept,
  ``Σ_s top_{w_s}(Δ_s)`` (channels ranked by Fisher within each slot), subject
  to ``fixed + Σ_s T_slot(w_s) ≤ budget − margin``: a multiple-choice knapsack
  solved exactly by DP on the grid, each slot offering only its Pareto widths
  (the top of each latency step). Without saliency every channel scores 1: the
  widest student (most channels) that fits.
- ``pruned``: the channel-pruned counterpart. Remove channels one at a time in
  global increasing Fisher order (raw scores, no per-layer normalisation, as
  pytorch-prunes' ``fisher_prune``; one-shot, without its fine-tuning between
  removals), never a slot below 1 channel, until the prediction fits.
- ``uniform``: one multiplier m for all slots, ``w_s = max(1, floor(m·full_s + 0.5))``,
  the largest m that fits.
- ``torch-pruning``: the trained teacher's slots pruned with Torch-Pruning (group L2
  magnitude, global ranking), the number of channels removed found by bisection so that
  the prediction fits (:mod:`perfstudent.plan.torch_pruning`; the ``compare`` extra).

A strategy that needs more than the problem and the scores says so in class
variables: ``needs_saliency`` (Fisher scores, not the all-ones default),
``needs_teacher`` (the trained teacher module, in :class:`StrategyInputs`) and
``extra`` (the optional dependency set it needs, checked by :meth:`Strategy.check_available`
before anything is loaded). :func:`default_strategy_names` are those without an extra:
what an experiment compares unless its config says otherwise.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from perfstudent.errors import InputError
from perfstudent.plan import torch_pruning
from perfstudent.plan.knapsack import pareto_candidates, solve_mckp
from perfstudent.plan.problem import PlanningProblem
from perfstudent.students.widthspec import WidthSpec

if TYPE_CHECKING:
    from torch import nn

Scores = dict[str, list[float]]


@dataclass(frozen=True)
class StrategyInputs:
    """What a strategy may plan with besides the problem: the per-slot channel scores (Fisher,
    or all ones) and the trained teacher (only for a strategy that ``needs_teacher``)."""

    scores: Scores
    teacher: nn.Module | None = None


@dataclass(frozen=True)
class Choice:
    """What a strategy chose: a width per slot (and uniform's multiplier, Torch-Pruning's MACs)."""

    widths: dict[str, int]
    multiplier: float | None = None
    macs: int | None = None


class Strategy(ABC):
    """One way to choose widths for a budget."""

    name: ClassVar[str]
    needs_saliency: ClassVar[bool] = False
    needs_teacher: ClassVar[bool] = False
    extra: ClassVar[str | None] = None  # the setup.cfg extra it needs (None: always available)

    def check_available(self) -> None:
        """Raise an InputError saying what to install if this strategy cannot run here."""
        return None  # the built-in strategies need nothing beyond perfstudent's requirements

    @abstractmethod
    def solve(self, problem: PlanningProblem, inputs: StrategyInputs) -> Choice | None:
        """The widths this strategy chooses on ``problem``, or None if no student fits."""


_STRATEGIES: dict[str, Strategy] = {}


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Register a strategy class by its ``name`` (an error on a duplicate)."""
    if cls.name in _STRATEGIES:
        raise ValueError(f"strategy {cls.name!r} is already registered")
    _STRATEGIES[cls.name] = cls()
    return cls


def strategy_names() -> list[str]:
    return list(_STRATEGIES)


def default_strategy_names() -> list[str]:
    """The strategies that need no optional extra (an experiment's default comparison)."""
    return [name for name, strategy in _STRATEGIES.items() if strategy.extra is None]


def get_strategy(name: str) -> Strategy:
    if name not in _STRATEGIES:
        raise InputError(f"unknown strategy {name!r}; choose one of {', '.join(_STRATEGIES)}")
    return _STRATEGIES[name]


def plan_perf(problem: PlanningProblem) -> dict[str, int] | None:
    """Exact knapsack on the grid: max saliency kept s.t. Σ units ≤ capacity."""
    widths_of, units, values = [], [], []
    for curve in problem.curves:
        keep = pareto_candidates(curve.units, curve.kept)
        widths_of.append(keep + 1)
        units.append(curve.units[keep])
        values.append(curve.kept[keep])
    chosen = solve_mckp(units, values, problem.capacity_units)
    if chosen is None:
        return None
    return {c.slot: int(w[k]) for c, w, k in zip(problem.curves, widths_of, chosen, strict=True)}


def plan_pruned(problem: PlanningProblem, scores: Scores) -> dict[str, int] | None:
    """Remove channels in global increasing Fisher order until the grid cost fits."""
    widths = dict(problem.base.widths)
    curves = {c.slot: c for c in problem.curves}
    total = problem.units_of(widths)
    order = sorted((score, i, slot) for i, slot in enumerate(widths) for score in scores[slot])
    for _score, _i, slot in order:
        if total <= problem.capacity_units:
            break
        if widths[slot] == 1:
            continue
        units = curves[slot].units
        total += int(units[widths[slot] - 2] - units[widths[slot] - 1])
        widths[slot] -= 1
    return widths if total <= problem.capacity_units else None


def uniform_widths(base: WidthSpec, multiplier: float) -> dict[str, int]:
    """``w_s = max(1, floor(m·full_s + 0.5))`` for every slot."""
    return {s: max(1, min(full, math.floor(multiplier * full + 0.5 + 1e-9)))
            for s, full in base.widths.items()}


def plan_uniform(problem: PlanningProblem) -> tuple[dict[str, int], float] | None:
    """The largest multiplier whose widths fit (scanning every width change point)."""
    points = {1.0} | {(w - 0.5) / full for full in problem.base.widths.values()
                      for w in range(1, full + 1)}
    for m in sorted(points, reverse=True):
        widths = uniform_widths(problem.base, m)
        if problem.fits(widths):
            return widths, m
    return None


@register_strategy
class Perf(Strategy):
    name = "perf"

    def solve(self, problem: PlanningProblem, inputs: StrategyInputs) -> Choice | None:
        widths = plan_perf(problem)
        return None if widths is None else Choice(widths)


@register_strategy
class Pruned(Strategy):
    name = "pruned"
    needs_saliency = True

    def solve(self, problem: PlanningProblem, inputs: StrategyInputs) -> Choice | None:
        widths = plan_pruned(problem, inputs.scores)
        return None if widths is None else Choice(widths)


@register_strategy
class Uniform(Strategy):
    name = "uniform"

    def solve(self, problem: PlanningProblem, inputs: StrategyInputs) -> Choice | None:
        found = plan_uniform(problem)
        return None if found is None else Choice(*found)


@register_strategy
class TorchPruning(Strategy):
    name = "torch-pruning"
    needs_teacher = True
    extra = "compare"

    def check_available(self) -> None:
        torch_pruning.require()

    def solve(self, problem: PlanningProblem, inputs: StrategyInputs) -> Choice | None:
        if inputs.teacher is None:
            raise InputError(f"strategy {self.name} needs the trained teacher")
        found = torch_pruning.prune_teacher(problem, inputs.teacher)
        return None if found is None else Choice(found.widths, macs=found.macs)
