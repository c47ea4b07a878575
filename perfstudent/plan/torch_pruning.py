"""The Torch-Pruning baseline: the teacher's slots pruned the way Torch-Pruning users prune.

Torch-Pruning (Fang et al., "DepGraph", CVPR 2023; MIT; ``pip install 'perfstudent[compare]'``)
budgets a network in MACs or a channel ratio, not in measured latency. This module runs its
recommended recipe on the trained teacher and lets the LUT decide how far to go:

- **Groups**: Torch-Pruning's dependency graph, built on the teacher at the spec's input
  size, with every conv and linear layer that is not a slot's producing conv (``conv1`` of a
  basic block, the 1×1 conv of a DenseNet bottleneck) in ``ignored_layers``. What is left is
  one group per slot: the producing conv's output channels, its BN, the next conv's input
  channels. Residual and concatenated streams keep their width (docs/design.md, prunable
  slots); a group that reaches beyond its slot is an error, never pruned.
- **Importance**: ``GroupMagnitudeImportance(p=2)``, Torch-Pruning's default and the one its
  README and benchmarks use: per channel, the squared L2 norm of its weights in every layer of
  the group (mean over the layers), divided by the group's mean.
- **Global ranking** (``global_pruning=True``): every slot channel against every other; the
  n least important go. Unlike ``BasePruner``, a slot never loses its last channel: when the
  threshold takes all of a slot's channels, BasePruner skips the whole group and leaves it at
  full width; here the slot keeps its most important channel.
- **The budget**: Torch-Pruning's knob is the number of channels removed, n (its global
  pruning ratio ``n / Σ full widths``), and the MACs fall as n grows. n is found by
  **bisection** on ``[0, Σ (full − 1)]``: the smallest n whose student fits the same rounded
  LUT model every strategy plans on (``PlanningProblem.fits``), i.e. the most MACs that fit.
  The teacher is then pruned for real with Torch-Pruning, the widths are read from the pruned
  convs, and its MACs (``tp.utils.count_ops_and_params``) go into the plan.
"""

from __future__ import annotations

import copy
import importlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from torch import nn

from perfstudent.errors import InputError, PerfStudentError
from perfstudent.plan.problem import PlanningProblem
from perfstudent.students.registry import get_family
from perfstudent.students.widthspec import WidthSpec

INSTALL_HINT = "pip install 'perfstudent[compare]'"


def require() -> ModuleType:
    """The ``torch_pruning`` package, or an InputError saying how to install it."""
    try:
        return importlib.import_module("torch_pruning")
    except ImportError:
        raise InputError("strategy torch-pruning needs the Torch-Pruning package, which is not "
                         f"installed: {INSTALL_HINT}") from None


@dataclass(frozen=True)
class PrunedTeacher:
    """The teacher after Torch-Pruning: its slot widths, its MACs, how many channels went."""

    model: nn.Module
    widths: dict[str, int]
    macs: int
    removed: int


def example_input(spec: WidthSpec) -> torch.Tensor:
    return torch.zeros(1, spec.in_channels, spec.input_size, spec.input_size)


def slot_convs(model: nn.Module, spec: WidthSpec) -> dict[str, nn.Conv2d]:
    """Each slot's producing conv in ``model`` (the conv whose output channels are the slot's),
    checked against ``spec``'s widths: the model must be the full-width teacher of ``spec``."""
    family = get_family(spec.family)
    modules = dict(model.named_modules())
    out: dict[str, nn.Conv2d] = {}
    for slot, width in spec.widths.items():
        paths = [layer.path for layer in family.slot_layers(spec, slot, 1) if layer.shape.cout == 1]
        conv = modules.get(paths[0]) if len(paths) == 1 else None
        if not isinstance(conv, nn.Conv2d):
            raise InputError(f"the teacher is not a {spec.family}: no conv produces slot {slot}")
        if conv.out_channels != width:
            raise InputError(f"the teacher's slot {slot} has {conv.out_channels} channels; the "
                             f"full {spec.family} has {width}: give the teacher of this family")
        out[slot] = conv
    return out


def slot_importance(tp: Any, graph: Any, model: nn.Module,
                    convs: dict[str, nn.Conv2d]) -> dict[str, torch.Tensor]:
    """Torch-Pruning's group L2 importance of every channel of every slot (slot order)."""
    producers = set(convs.values())
    ignored = [m for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)) and m not in producers]
    importance = tp.importance.GroupMagnitudeImportance(p=2)
    by_conv: dict[nn.Module, torch.Tensor] = {}
    for group in graph.get_all_groups(ignored_layers=ignored,
                                      root_module_types=[nn.Conv2d, nn.Linear]):
        by_conv[group[0].dep.target.module] = importance(group).detach().cpu()
    lost = [slot for slot, conv in convs.items() if conv not in by_conv]
    if lost or len(by_conv) != len(convs):
        raise PerfStudentError("Torch-Pruning couples a slot with channels outside the slots "
                               f"({', '.join(lost) or 'an extra group'}); refusing to prune it")
    return {slot: by_conv[conv] for slot, conv in convs.items()}


def removal_order(importance: dict[str, torch.Tensor]) -> list[tuple[str, int]]:
    """``(slot, channel)`` in the order global pruning removes them: increasing importance over
    all slots (ties: slot order, then channel), each slot's most important channel never."""
    ranked: list[tuple[float, int, int, str]] = []
    for i, (slot, scores) in enumerate(importance.items()):
        values = [float(v) for v in scores.tolist()]
        top = max(range(len(values)), key=values.__getitem__)
        ranked += [(v, i, c, slot) for c, v in enumerate(values) if c != top]
    return [(slot, c) for _v, _i, c, slot in sorted(ranked)]


def widths_after(full: dict[str, int], removed: list[tuple[str, int]]) -> dict[str, int]:
    """Slot widths once the channels ``removed`` are gone."""
    gone = Counter(slot for slot, _c in removed)
    return {slot: width - gone[slot] for slot, width in full.items()}


def fewest_removals(problem: PlanningProblem, order: list[tuple[str, int]]) -> int | None:
    """Bisection: the smallest n such that removing ``order[:n]`` fits ``problem`` (None if even
    removing all of them does not). Invariant: ``lo`` does not fit, ``hi`` fits."""
    full = problem.base.widths

    def fits(n: int) -> bool:
        return problem.fits(widths_after(full, order[:n]))

    lo, hi = 0, len(order)
    if fits(lo):
        return lo
    if not fits(hi):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


def prune_slots(tp: Any, graph: Any, convs: dict[str, nn.Conv2d],
                removed: list[tuple[str, int]]) -> dict[str, int]:
    """Remove ``removed`` with Torch-Pruning (each slot's group at once); the widths it leaves,
    read from the pruned convs."""
    by_slot: dict[str, list[int]] = defaultdict(list)
    for slot, channel in removed:
        by_slot[slot].append(channel)
    for slot, channels in by_slot.items():
        group = graph.get_pruning_group(convs[slot], tp.prune_conv_out_channels, idxs=sorted(channels))
        if not graph.check_pruning_group(group):
            raise PerfStudentError(f"Torch-Pruning refused to prune slot {slot} to "
                                   f"{convs[slot].out_channels - len(channels)} channels")
        group.prune()
    return {slot: int(conv.out_channels) for slot, conv in convs.items()}


def prune_teacher(problem: PlanningProblem, teacher: nn.Module) -> PrunedTeacher | None:
    """A pruned copy of ``teacher`` whose slot widths fit ``problem`` (None if none does)."""
    tp = require()
    base = problem.base
    model = copy.deepcopy(teacher).eval()
    convs = slot_convs(model, base)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input(base))
    order = removal_order(slot_importance(tp, graph, model, convs))
    n = fewest_removals(problem, order)
    if n is None:
        return None
    widths = prune_slots(tp, graph, convs, order[:n])
    if widths != widths_after(base.widths, order[:n]):
        raise PerfStudentError(f"Torch-Pruning left widths {widths}, not the planned ones")
    macs, _params = tp.utils.count_ops_and_params(model, example_input(base))
    return PrunedTeacher(model, widths, int(macs), n)
