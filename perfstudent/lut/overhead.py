"""The overhead term: ``network ≈ fixed + scale · Σ rows``, fitted on calibration networks.

The sweep times a few calibration networks of every kind at the end (their
widths and times are stored with the term, ``points``) and stores the fit on the
rows as measured; :mod:`perfstudent.lut.view` fits the term again from those
points on the rows as it reads them (smoothed by default), so the term always
matches the rows it is added to.
"""

from __future__ import annotations

import statistics

import numpy as np

#: A fitted scale outside this range is refused (the median residual is used with scale 1).
SCALE_RANGE = (0.5, 2.0)


def fit_overhead(points: list[tuple[float, float]],
                 floor_rows: float | None = None) -> tuple[float, float, str]:
    """``(fixed, scale, how)`` with ``network ≈ fixed + scale · rows`` over ``(rows, network)`` points.

    Least squares when there are at least three points with different row sums
    and the scale comes out in :data:`SCALE_RANGE`; otherwise scale 1 and
    ``fixed = median(network - rows)``. ``floor_rows``, the row sum of the smallest
    network the term will be added to: a fit that would predict it at or below 0 ms
    (noisy points, a steep line with a large negative intercept) is refused the same
    way, and if scale 1 does too, ``fixed = 0`` and ``scale = median(network / rows)``.
    """
    rows = np.asarray([p[0] for p in points], dtype=float)
    nets = np.asarray([p[1] for p in points], dtype=float)

    def positive(fixed: float, scale: float) -> bool:
        return floor_rows is None or fixed + scale * floor_rows > 0

    if len(points) >= 3 and np.ptp(rows) > 0:
        scale, fixed = np.polyfit(rows, nets, 1)
        if SCALE_RANGE[0] <= scale <= SCALE_RANGE[1] and positive(float(fixed), float(scale)):
            return float(fixed), float(scale), "least squares"
    fixed = float(statistics.median(nets - rows))
    if positive(fixed, 1.0):
        return fixed, 1.0, "median residual, scale 1"
    return 0.0, float(statistics.median(nets / rows)), "proportional (median network / rows)"
