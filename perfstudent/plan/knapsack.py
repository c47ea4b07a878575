"""Exact multiple-choice knapsack on an integer cost grid (the planner's solver).

Each group (a prunable slot) offers candidates (cost in grid units, value);
exactly one candidate is chosen per group, total cost ≤ capacity, total value
maximal. Dynamic programming over capacities 0..C: ``best[c]`` is the largest
value of a choice for the groups so far with total cost ≤ c. Time
O(Σ_groups candidates × C) numpy operations, memory O(groups × C) for the
back-pointers. On integer costs the answer is exact (tests compare with brute
force); the planner makes costs integer by rounding latencies UP to a grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def pareto_candidates(units: IntArray, values: FloatArray) -> IntArray:
    """Indices of the candidates not dominated in (cost ↓, value ↑), by increasing cost.

    A candidate is kept iff it is strictly more valuable than every candidate
    that costs no more than it (ties in both cost and value keep the larger
    index, i.e. the wider width). For a latency staircase with values growing
    with width these are the widths at the top of each latency step.
    """
    order = np.lexsort((-np.arange(len(units)), -values, units))  # cost ↑, value ↓, index ↓
    kept: list[int] = []
    best = -np.inf
    for i in order:
        if values[i] > best:
            kept.append(int(i))
            best = float(values[i])
    return np.asarray(kept, dtype=np.int64)


def solve_mckp(units: Sequence[IntArray], values: Sequence[FloatArray],
               capacity: int) -> list[int] | None:
    """Index of the chosen candidate of every group, or None if nothing fits.

    Among optimal choices the one with the smallest total cost is returned
    (values equal within 1e-12 relative count as equal).
    """
    if capacity < 0:
        return None
    best = np.zeros(capacity + 1)
    back: list[IntArray] = []
    for group_units, group_values in zip(units, values, strict=True):
        new = np.full(capacity + 1, -np.inf)
        arg = np.full(capacity + 1, -1, dtype=np.int64)
        for k, (u, v) in enumerate(zip(group_units.tolist(), group_values.tolist(), strict=True)):
            if u > capacity:
                continue
            cand = best[: capacity + 1 - u] + v
            tail = new[u:]
            better = cand > tail
            tail[better] = cand[better]
            arg[u:][better] = k
        best = new
        back.append(arg)
    if not np.isfinite(best[capacity]):
        return None
    optimum = best[capacity]
    cap = int(np.argmax(best >= optimum - 1e-12 * max(1.0, abs(optimum))))
    return _backtrack(back, units, cap)


def _backtrack(back: list[IntArray], units: Sequence[IntArray], cap: int) -> list[int]:
    chosen: list[int] = []
    for arg, group_units in zip(reversed(back), reversed(units), strict=True):
        k = int(arg[cap])
        chosen.append(k)
        cap -= int(group_units[k])
    chosen.reverse()
    return chosen
