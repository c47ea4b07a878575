"""Chains of slot blocks: the modules a LUT row times (:class:`~perfstudent.blockshape.Chain`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from perfstudent.blockshape import Chain
from perfstudent.students import get_family

if TYPE_CHECKING:
    from perfstudent.profiler.backends import InputShapes
    from perfstudent.students.widthspec import WidthSpec

#: Builds the module of a job and says the shapes of its inputs.
Builder = Callable[[], "tuple[nn.Module, InputShapes]"]


@dataclass(frozen=True)
class Job:
    """One thing to time: its LUT key and how to build it."""

    chain: Chain
    build: Builder = field(compare=False, repr=False)


def chain_module(spec: WidthSpec, slot: str, width: int, copies: int,
                 batch: int = 1) -> tuple[nn.Module, InputShapes]:
    """``copies`` blocks of ``slot`` at ``width`` in a row (each with its own weights)."""
    family = get_family(spec.family)
    probe = spec.with_widths({slot: width})
    blocks = [family.slot_block(probe, slot) for _ in range(copies)]
    return nn.Sequential(*blocks).eval(), [family.block_input(spec, slot, batch)]


def keeps_shape(spec: WidthSpec, slot: str, batch: int = 1) -> bool:
    """True if the block of ``slot`` returns a tensor of its input's shape (it can be chained)."""
    family = get_family(spec.family)
    shape = family.block_input(spec, slot, batch)
    with torch.no_grad():
        out = family.slot_block(spec.with_widths({slot: 1}), slot).eval()(torch.zeros(*shape))
    return tuple(out.shape) == shape


def chain_job(spec: WidthSpec, slot: str, chain: Chain, batch: int = 1) -> Job:
    """The job that times ``chain``, built from ``slot`` of ``spec``'s family."""
    return Job(chain, lambda: chain_module(spec, slot, chain.block.width, chain.copies, batch))
