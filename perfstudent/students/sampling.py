"""Students drawn at random, of the kinds a LUT must predict, and uniformly thinned ones.

Kinds (``KINDS``): ``uniform`` (every slot's width uniform in 1..full), ``stage``
(one fraction per stage, ``U(0.05, 1)``, shared by the stage's slots), ``few-full``
(a quarter of the slots at full width, the rest thin: ``U(1, full/4)``). Random
uniform widths alone would cluster every student around half the network;
the other kinds spread totals out and mix wide and thin neighbours.
"""

from __future__ import annotations

import numpy as np

from perfstudent.errors import InputError
from perfstudent.students.widthspec import WidthSpec

KINDS = ("uniform", "stage", "few-full")


def stage_of(slot: str) -> str:
    """The stage a slot belongs to: its module path without the block index (``layer2``)."""
    return slot.rsplit(".", 1)[0]


def uniform_student(base: WidthSpec, fraction: float) -> WidthSpec:
    """Every slot at ``max(1, round(fraction · full))``."""
    return base.with_widths({s: max(1, min(w, round(fraction * w))) for s, w in base.widths.items()})


def _draw(base: WidthSpec, kind: str, rng: np.random.Generator) -> dict[str, int]:
    if kind == "uniform":
        return {s: int(rng.integers(1, w + 1)) for s, w in base.widths.items()}
    if kind == "stage":
        fractions = {st: rng.uniform(0.05, 1.0) for st in sorted({stage_of(s) for s in base.widths})}
        return {s: max(1, round(w * fractions[stage_of(s)])) for s, w in base.widths.items()}
    if kind == "few-full":
        slots = list(base.widths)
        full = set(rng.choice(slots, size=max(1, len(slots) // 4), replace=False).tolist())
        return {s: w if s in full else int(rng.integers(1, max(1, w // 4) + 1))
                for s, w in base.widths.items()}
    raise InputError(f"unknown student kind {kind!r}; choose from {', '.join(KINDS)}")


def sample_students(base: WidthSpec, samples: int, seed: int = 0,
                    kinds: tuple[str, ...] = KINDS) -> list[tuple[str, WidthSpec]]:
    """``samples`` students of ``base``'s family, the kinds taken in turn: ``(kind, spec)``."""
    rng = np.random.default_rng(seed)
    return [(kinds[i % len(kinds)], base.with_widths(_draw(base, kinds[i % len(kinds)], rng)))
            for i in range(samples)]
