"""Per-configuration means, per-series fronts, equal-latency comparison and the figures."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest

from perfstudent.fronts.collect import RunPoint, latency_key, series_of
from perfstudent.fronts.plot import STYLE, plot_front, plot_staircase, style_of
from perfstudent.fronts.staircase import Staircase
from perfstudent.fronts.table import aggregate, compare_at_budgets, fronts, paired_differences


def point(series: str, budget: float | None, lat: float, acc: float, seed: int = 0) -> RunPoint:
    return RunPoint(run=f"runs/{series}-{budget}-{seed}", series=series,
                    kind="train" if series == "teacher" else "distill",
                    strategy=None if series == "teacher" else series, seed=seed, data="digits",
                    family="resnet20", budget_ms=budget, predicted_ms=budget, acc=acc,
                    latency_ms=lat, spread=0.0, noisy=False, measured_now=False)


@pytest.fixture
def points() -> pd.DataFrame:
    rows = [
        point("perf", 2.0, 1.9, 0.80, 0), point("perf", 2.0, 2.1, 0.90, 1),
        point("perf", 4.0, 3.8, 0.92, 0), point("perf", 4.0, 3.9, 0.93, 1),
        point("pruned", 2.0, 2.5, 0.70, 0), point("pruned", 4.0, 4.4, 0.88, 0),
        point("uniform", 2.0, 1.5, 0.75, 0), point("uniform", 4.0, 3.0, 0.74, 0),
        point("teacher", None, 8.0, 0.95),
    ]
    frame = pd.DataFrame([asdict(r) for r in rows])
    frame["acc_pct"] = 100 * frame["acc"]
    return frame


def test_series_names() -> None:
    assert series_of("train", None) == "teacher"
    assert series_of("distill", "perf") == "perf"
    assert series_of("train", "pruned") == "pruned (no AT)"
    assert series_of("distill", None) == "student"
    assert latency_key("local", "onnxruntime", 1) == "local/onnxruntime/t1"


def test_aggregate_means_over_seeds(points: pd.DataFrame) -> None:
    table = aggregate(points)
    assert list(table["series"]) == ["perf", "perf", "pruned", "pruned", "uniform", "uniform",
                                     "teacher"]
    perf2 = table.iloc[0]
    assert perf2["n"] == 2 and perf2["budget_ms"] == 2.0
    assert perf2["latency_ms"] == pytest.approx(2.0)
    assert perf2["acc_pct"] == pytest.approx(85.0)
    assert perf2["acc_std_pct"] == pytest.approx(statistics.stdev([80.0, 90.0]))
    assert table.iloc[2]["acc_std_pct"] == 0.0  # one seed: no spread, not nan
    # uniform at 4 ms (3.0 ms, 74%) is slower and worse than uniform at 2 ms (1.5 ms, 75%)
    assert list(table["on_front"]) == [True, True, True, True, True, False, True]


def test_fronts_and_equal_latency_gain(points: pd.DataFrame) -> None:
    table = aggregate(points)
    assert fronts(table)["uniform"] == [(1.5, 75.0)]
    cmp = compare_at_budgets(table)
    # perf at 2 ms budget: 85% at 2.0 ms; pruned has nothing within 2.0 ms; uniform 75% at 1.5 ms.
    assert math.isnan(cmp.iloc[0]["gain_vs_pruned_pct"])
    assert cmp.iloc[0]["gain_vs_uniform_pct"] == pytest.approx(10.0)
    # perf at 4 ms budget: 92.5% at 3.85 ms; pruned best within it is 70% (2.5 ms).
    assert cmp.iloc[1]["gain_vs_pruned_pct"] == pytest.approx(22.5)


def test_plot_front_writes_png_and_svg(points: pd.DataFrame, tmp_path: Path) -> None:
    paths = plot_front(points, aggregate(points), tmp_path / "f.png", title="t", xlabel="ms")
    assert [p.name for p in paths] == ["f.png", "f.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = paths[1].read_text()
    assert "<svg" in svg and "perf (4 runs)" in svg and "budget" in svg


def test_plot_staircase(tmp_path: Path) -> None:
    stair = Staircase("layer3.2", (1, 2, 3, 4), (1.0, 1.0, 2.0, 2.0))
    assert stair.steps == 1 and stair.at(3) == 2.0
    paths = plot_staircase(stair, [("perf", "2 ms", 2), ("pruned", "2 ms", 3)],
                           tmp_path / "s.png", title="t")
    assert all(p.stat().st_size > 1000 for p in paths)
    assert "pruned" in paths[1].read_text()


def test_equal_latency_tolerates_two_percent() -> None:
    rows = [point("perf", 1.0, 1.000, 0.80), point("uniform", 1.0, 1.015, 0.70)]
    frame = pd.DataFrame([asdict(r) for r in rows])
    frame["acc_pct"] = 100 * frame["acc"]
    table = aggregate(frame)
    assert compare_at_budgets(table).iloc[0]["gain_vs_uniform_pct"] == pytest.approx(10.0)
    assert math.isnan(compare_at_budgets(table, tolerance=0.0).iloc[0]["gain_vs_uniform_pct"])


def test_paired_differences_pair_by_budget_and_seed() -> None:
    """perf minus pruned per (budget, seed), a t interval checked by hand, unpaired runs left out."""
    rows = [point("perf", 2.0, 2.0, a, seed) for seed, a in enumerate([0.80, 0.84, 0.83])]
    rows += [point("pruned", 2.0, 2.2, a, seed) for seed, a in enumerate([0.78, 0.80, 0.82])]
    rows += [point("pruned", 2.0, 2.2, 0.10, 7),  # seed 7 has no perf partner
             point("uniform", 2.0, 1.0, 0.70, 0), point("teacher", None, 8.0, 0.95)]
    frame = pd.DataFrame([asdict(r) for r in rows])
    frame["acc_pct"] = 100 * frame["acc"]
    pairs = paired_differences(frame)
    assert list(pairs["vs"]) == ["pruned", "uniform"]
    pruned = pairs.iloc[0]
    diffs = [2.0, 4.0, 1.0]
    mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2 degrees of freedom)
    assert pruned["pairs"] == 3 and pruned["mean_diff_pct"] == pytest.approx(mean)
    assert pruned["ci_low_pct"] == pytest.approx(mean - half)
    assert pruned["ci_high_pct"] == pytest.approx(mean + half)
    assert pruned["latency_ratio"] == pytest.approx(1.1)
    uniform = pairs.iloc[1]  # one pair: a difference but no interval
    assert uniform["pairs"] == 1 and uniform["mean_diff_pct"] == pytest.approx(10.0)
    assert math.isnan(uniform["ci_low_pct"]) and math.isnan(uniform["ci_high_pct"])


def test_every_strategy_keeps_one_style_in_every_figure() -> None:
    """The staircase numbers series in its own order; a strategy's colour must not depend on it."""
    from perfstudent.plan.strategies import strategy_names

    for name in strategy_names():
        assert name in STYLE, name
        assert {style_of(name, i) for i in range(5)} == {STYLE[name]}
    fixed = {colour for colour, _marker in STYLE.values()}
    assert not fixed & {style_of("someone else", i)[0] for i in range(10)}
