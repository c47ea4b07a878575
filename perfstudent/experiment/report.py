"""The experiment's front and ``report.md``: the table, equal-latency gains, the figures."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfstudent.distill.runs import load_run
from perfstudent.experiment.actions import Context
from perfstudent.experiment.engine import State
from perfstudent.fronts import make_front
from perfstudent.fronts.collect import latency_key
from perfstudent.fronts.table import compare_at_budgets, paired_differences
from perfstudent.io import atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

    from perfstudent.experiment.steps import Layout


def front(ctx: Context, runs: list[Path], out: Path) -> None:
    device, backend, threads = ctx.device
    make_front(runs, out, device=device, backend=backend, threads=threads, lut=ctx.lut,
               measure=False, slot=ctx.config["front"]["slot"], progress=ctx.progress)


def check_front(out: Path) -> str | None:
    wanted = [out.with_suffix(s) for s in (".png", ".svg", ".csv")]
    missing = [p.name for p in wanted if not p.is_file() or p.stat().st_size == 0]
    return f"missing {', '.join(missing)} in {out.parent}" if missing else None


def _fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(frame: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub markdown table of ``frame`` (floats with ``digits`` decimals, nan as –)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_fmt(row[c], digits) for c in cols) + " |")
    return "\n".join(lines)


def result_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The per-configuration table of the report (ms, % top-1)."""
    table = summary.rename(columns={
        "budget_ms": "budget (ms)", "predicted_ms": "predicted (ms)",
        "latency_ms": "measured (ms)", "latency_std_ms": "± (ms)", "acc_pct": "top-1 (%)",
        "acc_std_pct": "± (%)", "n": "seeds"})
    return table[["series", "budget (ms)", "predicted (ms)", "measured (ms)", "± (ms)",
                  "top-1 (%)", "± (%)", "seeds"]]


def _verdict(cmp: pd.DataFrame) -> list[str]:
    lines = []
    for col in [c for c in cmp.columns if c.startswith("gain_vs_")]:
        other = col[len("gain_vs_"):-len("_pct")]
        gains = [g for g in cmp[col] if not math.isnan(g)]
        if not gains:
            lines.append(f"- vs {other}: no {other} student is as fast as any perf student.")
            continue
        wins = sum(g > 0 for g in gains)
        lines.append(f"- vs {other}: perf is more accurate at equal latency at {wins} of "
                     f"{len(gains)} budgets (gain {min(gains):+.2f} to {max(gains):+.2f} points, "
                     f"mean {sum(gains) / len(gains):+.2f}).")
    return lines


def _paired_section(points: pd.DataFrame) -> list[str]:
    """The paired per-seed differences (perf minus each baseline at one budget and seed)."""
    pairs = paired_differences(points)
    if pairs.empty:
        return []
    lines = ["## Paired per-seed differences", "",
             "perf top-1 minus the baseline's at the same budget and seed, in points: mean over "
             "seeds and its 95% Student-t interval (– with one seed). `latency ratio` = the "
             "baseline's measured latency over perf's (above 1: the baseline is slower).", "",
             markdown_table(pairs.rename(columns={
                 "budget_ms": "budget (ms)", "mean_diff_pct": "perf − baseline (points)",
                 "ci_low_pct": "95% CI low", "ci_high_pct": "95% CI high",
                 "latency_ratio": "latency ratio"})), ""]
    tight = pairs[pairs["budget_ms"] == pairs["budget_ms"].min()]
    for row in tight.itertuples():
        if math.isnan(row.ci_low_pct):
            continue
        verdict = ("ahead beyond the seed spread" if row.ci_low_pct > 0 else
                   "behind beyond the seed spread" if row.ci_high_pct < 0 else
                   "not separable from the seed spread")
        lines.append(f"- tightest budget ({row.budget_ms:.3g} ms), vs {row.vs}: "
                     f"{row.mean_diff_pct:+.2f} points [{row.ci_low_pct:+.2f}, "
                     f"{row.ci_high_pct:+.2f}]: {verdict}.")
    return [*lines, ""]


def measurement_note(ctx: Context, runs: list[Path]) -> str:
    """When and under what load the runs' latencies were taken (what their entries record)."""
    key = latency_key(*ctx.device)
    entries = [load_run(path).summary.latency.get(key, {}) for path in runs]
    moments = {(e.get("measured_at"), e.get("load_before"), e.get("load_after")) for e in entries}
    protocol = ctx.config["device"]["protocol"]
    together = all(e.get("measured_together") == len(runs) for e in entries)
    if len(moments) != 1 or not together or next(iter(moments))[0] is None:
        return (f"Latency: {key}, timing protocol {protocol}; the runs were not measured in one "
                "recorded measurement (`--redo measure` measures them together again).")
    when, before, after = next(iter(moments))
    load = ("load average unknown" if before is None or after is None else
            f"1-minute load average {before} before, {after} after")
    return (f"Latency: every run measured together in one interleaved measurement ({key}, timing "
            f"protocol {protocol}), started {when}; {load}.")


def write_report(ctx: Context, lay: Layout, runs: list[Path]) -> None:
    """``report.md``: setup, the table, the comparison at equal latency, figures, step times."""
    import pandas as pd


    summary = pd.read_csv(lay.front.with_name("front-summary.csv"))
    device, backend, threads = ctx.device
    cfg = ctx.config
    parts = [f"# Experiment {cfg['experiment']['name']}", "",
             f"{ctx.family} on {cfg['data']['dataset']} ({ctx.input_size}px), latency measured "
             f"end to end on {device} / {backend} / {threads} thread(s). Students distilled with "
             f"attention transfer (beta {cfg['distill']['beta']}), {cfg['distill']['epochs']} "
             f"epochs; teacher {cfg['train']['epochs'] if cfg['train']['teacher'] is None else 'reused'}"
             f" epochs; seeds {cfg['experiment']['seeds']}.", "", measurement_note(ctx, runs), "",
             "## Results (means over seeds)", "", markdown_table(result_table(summary)), ""]
    if "perf" in set(summary["series"]):
        cmp = compare_at_budgets(summary)
        parts += ["## Performance-enhanced students at equal measured latency", "",
                  "`gain_vs_S` = perf top-1 minus the best top-1 strategy S reaches within perf's "
                  "measured latency + 2% (its Pareto front read as a step function); – = S has "
                  "nothing that fast.", "", markdown_table(cmp), "", *_verdict(cmp), ""]
        parts += _paired_section(pd.read_csv(lay.front.with_suffix(".csv")))
    parts += ["## Figures", "", "![front](front/front.png)", ""]
    if lay.front.with_name("front-staircase.png").is_file():
        parts += ["![staircase](front/front-staircase.png)", ""]
    parts += ["## Steps", "", _steps_table(lay.out / "state.json"), ""]
    atomic_write_text(lay.report, "\n".join(parts))


def _steps_table(state_path: Path) -> str:
    steps = State.load(state_path).steps
    total = sum(e.seconds or 0.0 for e in steps.values())
    rows = [f"| {sid} | {e.status} | {e.seconds or 0.0:.1f} |" for sid, e in steps.items()]
    return "\n".join(["| step | status | seconds |", "|---|---|---|", *rows,
                      f"| total (before this report) | | {total:.1f} |"])
