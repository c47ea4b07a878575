"""The modules a LUT row times (:class:`~perfstudent.blockshape.Chain`), and the jobs that build them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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


def chain_module(spec: WidthSpec, slot: str, width: int, neighbours: bool = True,
                 batch: int = 1) -> tuple[nn.Module, InputShapes]:
    """The block of ``slot`` at ``width``, between its neighbours at full width if ``neighbours``.

    ``spec`` gives the other slots' widths (the full spec in a sweep); every
    block has its own random weights.
    """
    family = get_family(spec.family)
    before, after = family.slot_neighbours(spec, batch)[slot] if neighbours else (None, None)
    blocks = [family.slot_block(spec, before)] if before else []
    blocks.append(family.slot_block(spec.with_widths({slot: width}), slot))
    blocks += [family.slot_block(spec, after)] if after else []
    first = before or slot
    return nn.Sequential(*blocks).eval(), [family.block_input(spec, first, batch)]


def chain_job(spec: WidthSpec, slot: str, chain: Chain, batch: int = 1) -> Job:
    """The job that times ``chain``, built from ``slot`` of ``spec``'s family."""
    return Job(chain, lambda: chain_module(spec, slot, chain.block.width, not chain.alone, batch))
