"""Fisher saliency of the prunable channels of a teacher (docs/design.md, formulas).

For the activation ``a`` (N×C×H×W) of a slot, taken right after the slot's
BN+ReLU (the output of ``Family.slot_activation_path(slot)``), and ``g`` the
gradient of the teacher's loss w.r.t. ``a``, the saliency of channel ``c`` is
(Theis et al. 2018, as in pytorch-prunes)::

    Δ_c = 1/(2N) · Σ_n (Σ_{h,w} a_nchw · g_nchw)²

summed over every sample n of every batch, N = total number of samples. The
loss is cross-entropy with ``reduction="sum"``, so ``g_n`` is the gradient of
sample n's own loss (this is what makes ``Σ_hw a·g`` the per-sample first-order
change of the loss when channel c is removed, and makes Δ independent of the
batch size). pytorch-prunes uses the batch-mean loss and sums the per-batch
means, which is B²·(number of batches)/N times our figure for batches of size
B: the same ranking for a fixed batch size.

Mode: the teacher runs in **eval mode** (BatchNorm with running statistics),
not in the train mode pytorch-prunes uses. pytorch-prunes estimates Fisher
during fine-tuning steps, so train mode is what it has at hand; here the teacher
is already trained and the saliency should rank channels of the network as it
is deployed (running statistics, deterministic, independent of batch
composition), and eval mode leaves the teacher's BN buffers untouched.
``train_mode=True`` reproduces pytorch-prunes' choice on a copy of the model.

Capture: a forward hook on the activation module registers a tensor hook
(``Tensor.register_hook``) on its output; no module backward hooks.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from perfstudent.errors import InputError
from perfstudent.records import Record

SCHEMA = "perfstudent.saliency/1"


class _FisherAccumulator:
    """Hooks one activation module and accumulates Σ_n (Σ_hw a·g)² per channel."""

    def __init__(self, module: nn.Module) -> None:
        self.total: torch.Tensor | None = None
        self._handle = module.register_forward_hook(self._forward)

    def _forward(self, _module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        if not output.requires_grad:
            return
        act = output.detach().clone()  # the ReLU may be in-place: keep this version

        def on_grad(grad: torch.Tensor) -> None:
            per_sample = (act * grad.detach()).sum(dim=(2, 3)).double()  # (N, C)
            squared = per_sample.pow(2).sum(dim=0)
            self.total = squared if self.total is None else self.total + squared

        output.register_hook(on_grad)

    def remove(self) -> None:
        self._handle.remove()


def fisher_saliency(model: nn.Module, activation_paths: Mapping[str, str],
                    batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *,
                    train_mode: bool = False) -> tuple[dict[str, list[float]], int]:
    """Fisher saliency Δ_c of every channel of every slot; returns (scores, N).

    ``activation_paths`` maps slot name -> module path whose output is the
    slot's activation; ``batches`` yields (inputs, integer targets). The model
    is not modified (train mode works on a deep copy).
    """
    was_training = model.training
    net = copy.deepcopy(model).train() if train_mode else model.eval()
    modules = dict(net.named_modules())
    missing = [p for p in activation_paths.values() if p not in modules]
    if missing:
        raise InputError(f"model has no module {missing[0]!r} (wrong family for this checkpoint?)")
    hooks = {slot: _FisherAccumulator(modules[path]) for slot, path in activation_paths.items()}
    samples = 0
    try:
        for inputs, targets in batches:
            net.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(net(inputs), targets, reduction="sum")
            loss.backward()
            samples += int(inputs.shape[0])
    finally:
        for hook in hooks.values():
            hook.remove()
        net.zero_grad(set_to_none=True)
        if not train_mode:
            model.train(was_training)
    if samples == 0:
        raise InputError("no data: the saliency needs at least one batch")
    scores = {}
    for slot, hook in hooks.items():
        if hook.total is None:
            raise InputError(f"activation of slot {slot} never received a gradient")
        scores[slot] = (hook.total / (2 * samples)).tolist()
    return scores, samples


@dataclass(frozen=True)
class Saliency(Record):
    """Per slot, per channel Fisher scores of one teacher (a record, ``perfstudent.saliency/1``)."""

    SCHEMA = SCHEMA

    family: str
    input_size: int
    in_channels: int
    num_classes: int
    slots: dict[str, list[float]]
    teacher: dict[str, Any] = field(default_factory=dict)
    batches: int = 0
    samples: int = 0
    mode: str = "eval"

    def ranked(self, slot: str) -> list[float]:
        """Scores of ``slot`` in decreasing order (keeping w channels keeps the first w)."""
        return sorted(self.slots[slot], reverse=True)

    def kept(self, widths: Mapping[str, int]) -> float:
        """Fraction of the total saliency kept when each slot keeps its top-w channels."""
        total = sum(sum(v) for v in self.slots.values())
        kept = sum(sum(self.ranked(s)[:w]) for s, w in widths.items())
        return kept / total if total > 0 else 0.0

    def check_matches(self, family: str, input_size: int, full_widths: Mapping[str, int]) -> None:
        """Refuse (InputError) a saliency of another architecture or input size."""
        if family != self.family:
            raise InputError(f"saliency file is for {self.family}, not {family}")
        if input_size != self.input_size:
            raise InputError(f"saliency file is for input size {self.input_size}, not {input_size}")
        for slot, full in full_widths.items():
            if len(self.slots.get(slot, [])) != full:
                raise InputError(f"saliency file does not match {family}: slot {slot} has "
                                 f"{len(self.slots.get(slot, []))} scores, expected {full}")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (the teacher checkpoint's identity)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def teacher_identity(run_path: Path, spec_dict: dict[str, Any], checkpoint: Path) -> dict[str, Any]:
    """What identifies the teacher a saliency belongs to: run path, spec, checkpoint hash."""
    return {"run": str(Path(run_path).resolve()), "spec": spec_dict,
            "checkpoint": checkpoint.name, "sha256": file_sha256(checkpoint)}
