"""From per-run points to per-configuration means and per-series Pareto fronts.

A configuration is one series at one budget (seeds of it are averaged); runs
without a plan budget are configurations of their own. Each series' front is
the Pareto front (:mod:`perfstudent.fronts.pareto`) of its configuration means.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from perfstudent.fronts.collect import STRATEGIES, TEACHER
from perfstudent.fronts.pareto import front_at, pareto_front, pareto_mask

if TYPE_CHECKING:
    import pandas as pd


def series_order(names: list[str]) -> list[str]:
    """perf, pruned, uniform, then others alphabetically, teacher last."""
    fixed = [s for s in STRATEGIES if s in names]
    rest = sorted(n for n in names if n not in STRATEGIES and n != TEACHER)
    return fixed + rest + ([TEACHER] if TEACHER in names else [])


def aggregate(points: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds of each (series, budget) configuration.

    Columns: series, budget_ms, n, latency_ms, latency_std_ms, acc_pct,
    acc_std_pct, predicted_ms, on_front (on its series' Pareto front).
    """
    import pandas as pd

    frame = points.copy()
    frame["config"] = [f"b{b:.9g}" if isinstance(b, float) and math.isfinite(b) else f"r{r}"
                       for b, r in zip(frame["budget_ms"], frame["run"], strict=True)]
    grouped = frame.groupby(["series", "config"], sort=False)
    table = grouped.agg(
        budget_ms=("budget_ms", "first"), n=("run", "count"),
        latency_ms=("latency_ms", "mean"), latency_std_ms=("latency_ms", "std"),
        acc_pct=("acc_pct", "mean"), acc_std_pct=("acc_pct", "std"),
        predicted_ms=("predicted_ms", "mean"),
    ).reset_index().drop(columns="config")
    table[["latency_std_ms", "acc_std_pct"]] = table[["latency_std_ms", "acc_std_pct"]].fillna(0.0)
    table["on_front"] = False
    for _series, idx in table.groupby("series").groups.items():
        sub = table.loc[idx]
        table.loc[idx, "on_front"] = pareto_mask(list(sub["latency_ms"]), list(sub["acc_pct"]))
    order = {name: i for i, name in enumerate(series_order(list(table["series"].unique())))}
    table["_o"] = table["series"].map(order)
    table = table.sort_values(["_o", "latency_ms"]).drop(columns="_o").reset_index(drop=True)
    return pd.DataFrame(table)


def fronts(table: pd.DataFrame) -> dict[str, list[tuple[float, float]]]:
    """Series name -> Pareto front of its configuration means, (ms, % top-1)."""
    return {name: pareto_front(list(sub["latency_ms"]), list(sub["acc_pct"]))
            for name, sub in table.groupby("series", sort=False)}


def compare_at_budgets(table: pd.DataFrame, reference: str = "perf",
                       tolerance: float = 0.02) -> pd.DataFrame:
    """At each budget: each series' mean, and ``reference`` minus the others at equal latency.

    ``gain_vs_<s>`` is the reference's accuracy minus the best accuracy series
    ``s`` reaches within the reference's measured latency ``L`` (its front read
    as a step function, at ``L·(1 + tolerance)``: latencies within 2% count as
    equal, about the run-to-run spread of a median here); ``nan`` when ``s`` has
    nothing that fast.
    """
    import pandas as pd

    all_fronts = fronts(table)
    rows = []
    ref = table[table["series"] == reference]
    for _, row in ref.sort_values("budget_ms").iterrows():
        out = {"budget_ms": row["budget_ms"], f"{reference}_latency_ms": row["latency_ms"],
               f"{reference}_acc_pct": row["acc_pct"]}
        for name, front in all_fronts.items():
            if name in (reference, TEACHER):
                continue
            out[f"gain_vs_{name}_pct"] = row["acc_pct"] - front_at(
                front, row["latency_ms"] * (1 + tolerance))
        rows.append(out)
    return pd.DataFrame(rows)


def paired_differences(points: pd.DataFrame, reference: str = "perf",
                       confidence: float = 0.95) -> pd.DataFrame:
    """``reference`` minus each other strategy in top-1, paired by budget and seed.

    Two students of one budget and one seed differ only in the strategy that chose
    their widths (same data order, augmentation draws and teacher), so the per-seed
    difference cancels the seed's own luck. Per (budget, strategy): ``n`` pairs, the
    mean difference in points, its Student-t interval at ``confidence``
    (``mean ± t_{(1+c)/2, n-1} · sd / √n``; ``nan`` with fewer than 2 pairs), and the
    strategy's measured latency over the reference's (mean of the pairs' ratios):
    equal budgets need not mean equal measured latency.
    """
    import numpy as np
    import pandas as pd
    from scipy import stats

    planned = points[points["budget_ms"].notna() & points["seed"].notna()]
    ref = planned[planned["series"] == reference].set_index(["budget_ms", "seed"])
    rows = []
    for (budget, series), sub in planned.groupby(["budget_ms", "series"], sort=True):
        if series in (reference, TEACHER):
            continue
        pairs = [(ref.loc[(budget, r.seed)], r) for r in sub.itertuples()
                 if (budget, r.seed) in ref.index]
        diffs = np.array([a["acc_pct"] - b.acc_pct for a, b in pairs], dtype=float)
        ratios = [b.latency_ms / a["latency_ms"] for a, b in pairs]
        n = len(diffs)
        mean = float(diffs.mean()) if n else math.nan
        half = math.nan
        if n >= 2:
            half = float(stats.t.ppf((1 + confidence) / 2, n - 1) * diffs.std(ddof=1) / math.sqrt(n))
        rows.append({"budget_ms": budget, "vs": series, "pairs": n, "mean_diff_pct": mean,
                     "ci_low_pct": mean - half, "ci_high_pct": mean + half,
                     "latency_ratio": float(np.mean(ratios)) if ratios else math.nan})
    order = {name: i for i, name in enumerate(series_order([r["vs"] for r in rows]))}
    rows.sort(key=lambda r: (r["budget_ms"], order[r["vs"]]))
    return pd.DataFrame(rows, columns=["budget_ms", "vs", "pairs", "mean_diff_pct", "ci_low_pct",
                                       "ci_high_pct", "latency_ratio"])
