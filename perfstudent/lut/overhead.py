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


def fit_overhead(points: list[tuple[float, float]]) -> tuple[float, float, str]:
    """``(fixed, scale, how)`` with ``network ≈ fixed + scale · rows`` over ``(rows, network)`` points.

    Least squares when there are at least three points with different row sums
    and the scale comes out in :data:`SCALE_RANGE`; otherwise scale 1 and
    ``fixed = median(network - rows)``.
    """
    rows = np.asarray([p[0] for p in points], dtype=float)
    nets = np.asarray([p[1] for p in points], dtype=float)
    if len(points) >= 3 and np.ptp(rows) > 0:
        scale, fixed = np.polyfit(rows, nets, 1)
        if SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
            return float(fixed), float(scale), "least squares"
    return float(statistics.median(nets - rows)), 1.0, "median residual, scale 1"
