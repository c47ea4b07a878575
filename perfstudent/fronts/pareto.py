"""Pareto fronts of (latency, accuracy) points.

A point ``(l, a)`` is *dominated* when another point is at least as fast and at
least as accurate, and strictly better in one of the two:
``∃ j: l_j ≤ l ∧ a_j ≥ a ∧ (l_j < l ∨ a_j > a)``. The front is the set of
points no other point dominates, listed by increasing latency; along it the
accuracy strictly increases. Read as a step function, the front answers "what
is the best accuracy reachable within latency L":
``front_at(L) = max{a_i : l_i ≤ L}`` (``nan`` below the fastest point).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def pareto_mask(latency: Sequence[float], accuracy: Sequence[float]) -> list[bool]:
    """``True`` for every point on the (min latency, max accuracy) front.

    Exact duplicates of a front point are all kept (neither dominates the
    other); ``nan`` points are never on the front. O(n log n): sort by
    latency, then by accuracy descending, and sweep keeping the best accuracy
    seen so far.
    """
    lat = np.asarray(latency, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    if lat.shape != acc.shape or lat.ndim != 1:
        raise ValueError("latency and accuracy must be 1-D sequences of the same length")
    valid = np.isfinite(lat) & np.isfinite(acc)
    mask = [False] * len(lat)
    order = sorted(np.flatnonzero(valid), key=lambda i: (lat[i], -acc[i]))
    best = -math.inf
    best_lat = math.nan
    for i in order:
        if acc[i] > best:
            mask[i] = True
            best, best_lat = float(acc[i]), float(lat[i])
        elif acc[i] == best and lat[i] == best_lat:
            mask[i] = True  # an exact duplicate of the last front point
    return mask


def pareto_front(latency: Sequence[float], accuracy: Sequence[float]) -> list[tuple[float, float]]:
    """The front's distinct points ``(latency, accuracy)`` by increasing latency."""
    mask = pareto_mask(latency, accuracy)
    points = {(float(lat), float(acc))
              for lat, acc, keep in zip(latency, accuracy, mask, strict=True) if keep}
    return sorted(points)


def front_at(front: Sequence[tuple[float, float]], latency_ms: float) -> float:
    """Best accuracy of ``front`` reachable within ``latency_ms`` (``nan`` if none)."""
    reachable = [acc for lat, acc in front if lat <= latency_ms]
    return max(reachable) if reachable else math.nan


def step_xy(front: Sequence[tuple[float, float]], x_max: float | None = None
            ) -> tuple[list[float], list[float]]:
    """Vertices of the front drawn as a post-step line (``plt.step(where='post')``).

    The last accuracy is held out to ``x_max`` when given (the plot's right
    edge), which makes "nothing better until here" visible.
    """
    xs = [lat for lat, _ in front]
    ys = [acc for _, acc in front]
    if front and x_max is not None and x_max > xs[-1]:
        xs.append(x_max)
        ys.append(ys[-1])
    return xs, ys
