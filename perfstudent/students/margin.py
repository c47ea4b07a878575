"""The planning margin from validation residuals: a conformal bound on measured / predicted.

``lut validate`` stores, per student, the residual ``r = measured / predicted - 1``
of the LUT's prediction. For a new plan, exchangeability of its residual with
the stored ones gives (split conformal prediction): with ``n`` residuals sorted
``r_(1) <= ... <= r_(n)`` and ``k = ceil((n + 1) · coverage)``, a new student's
``r <= r_(k)`` with probability at least ``coverage``. Planning to a predicted
``budget / (1 + r_(k))`` then keeps its measured latency under the budget with
that probability, so ``margin = budget · r_(k) / (1 + r_(k))`` (zero when the
LUT over-predicts, ``r_(k) <= 0``). With ``k > n`` (too few residuals for the
coverage) the bound does not exist and the largest residual is used instead,
with a note that says so.
"""

from __future__ import annotations

import math

from perfstudent.errors import InputError

DEFAULT_COVERAGE = 0.95


def conformal_margin(residuals: list[float], budget_ms: float,
                     coverage: float = DEFAULT_COVERAGE) -> tuple[float, str]:
    """``(margin_ms, note)`` for ``budget_ms`` from the residuals (module docstring)."""
    if not 0 < coverage < 1:
        raise InputError(f"coverage must be in (0, 1), got {coverage}")
    clean = sorted(r for r in residuals if math.isfinite(r))
    if not clean:
        return 0.0, "auto: no validation residuals in the LUT (run `perfstudent lut validate`), margin 0"
    n = len(clean)
    k = math.ceil((n + 1) * coverage)
    bound = clean[min(k, n) - 1]
    margin = budget_ms * bound / (1 + bound) if bound > 0 else 0.0
    if k > n:
        return margin, (f"auto: only {n} validation residuals, too few for a {coverage:.0%} bound; "
                        f"used the largest, {bound:+.1%}")
    return margin, (f"auto: {coverage:.0%} of students measure within the budget (conformal bound "
                    f"{bound:+.1%} from {n} validation residuals)")
