"""Isotonic smoothing of a measured staircase: the closest non-decreasing sequence.

**Problem.** Given the row values ``y_1 .. y_n`` of one slot's block in one
context at widths ``w_1 < .. < w_n`` of one alignment class (see
:mod:`perfstudent.lut.view`), find ``f`` minimising ``Σ (y_i - f_i)²`` subject to
``f_1 <= f_2 <= .. <= f_n``: a block with more channels costs no less.

**Algorithm.** Pool adjacent violators: scan left to right keeping blocks of
pooled values (their mean and size); when a block's mean falls below the one
before it, merge the two (the size-weighted mean) and look back again. Each
value enters once and each merge removes a block, so it is ``O(n)``.

**Exactness.** PAV returns the unique least-squares isotonic fit, whose value at
``i`` is also ``max_{j <= i} min_{k >= i} mean(y_j .. y_k)`` (Barlow, Bartholomew,
Bremner and Brunk 1972, the min-max formula); ``tests/test_lut_smooth.py`` checks
the two against each other.

**Why.** A row is a *difference* of two chain timings (the block at ``w`` and at
full width between its full-width neighbours), so its noise is that of the whole
chain, not of the block. Where the neighbours dominate the chain (thin blocks,
224 px inputs: chains of ~8 ms with a 5-8% sample spread, 695 of 973 rows flagged
noisy) a thin block's row carries noise as large as its cost; the rows go up and
down, and the planner, which picks the widths the table makes look cheap, picks
the dips (its plans measured 10% above prediction on resnet18 @224). Within an
alignment class a wider block does not run faster on these runtimes, so a dip
is noise and pooling it with its neighbours removes it; a real step stays a
step. Measured against students measured end to end (the latency-truth
validations, re-read without timing anything; docs/profiler.md "Smoothing"):
resnet18 @224 within ±5% 58% -> 88%, and no setting got worse within ±5% or
±10% (resnet56's largest error rose 18% -> 20%, the pilot's ρ 0.913 -> 0.896).
"""

from __future__ import annotations

from collections.abc import Sequence


def isotonic(values: Sequence[float]) -> list[float]:
    """The least-squares non-decreasing fit of ``values`` (module docstring)."""
    means: list[float] = []
    sizes: list[int] = []
    for value in values:
        mean, size = float(value), 1
        while means and means[-1] > mean:
            prev_mean, prev_size = means.pop(), sizes.pop()
            mean = (prev_mean * prev_size + mean * size) / (prev_size + size)
            size += prev_size
        means.append(mean)
        sizes.append(size)
    return [mean for mean, size in zip(means, sizes, strict=True) for _ in range(size)]
