"""Matplotlib (Agg) figures: the accuracy-latency front and a slot's latency staircase.

Figures are rendered into memory and written atomically, PNG and SVG side by
side, so a half-written figure never replaces a good one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfstudent.fronts.collect import TEACHER
from perfstudent.fronts.pareto import step_xy
from perfstudent.fronts.table import fronts, series_order
from perfstudent.io import atomic_write_bytes

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from perfstudent.fronts.staircase import Staircase

#: Every registered strategy and the teacher keep one style across the front and the staircase.
STYLE = {"perf": ("C0", "o"), "pruned": ("C1", "s"), "uniform": ("C2", "^"),
         "torch-pruning": ("C6", "D"), TEACHER: ("black", "*")}
_EXTRA = ["C3", "C4", "C5", "C7", "C8", "C9"]


def style_of(series: str, index: int) -> tuple[str, str]:
    """(colour, marker) of a series: fixed for the strategies and the teacher."""
    return STYLE.get(series, (_EXTRA[index % len(_EXTRA)], "D"))


def _figure(size: tuple[float, float] = (7.0, 4.6)) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    # Figure() directly (no pyplot): no global state, no GUI backend, Agg canvas.
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def save_figure(fig: Figure, out: Path) -> list[Path]:
    """Write ``out`` with its suffix's format plus the PNG/SVG sibling; returns both paths."""
    out = Path(out)
    paths = [out.with_suffix(".png"), out.with_suffix(".svg")]
    for path in paths:
        buf = io.BytesIO()
        fig.savefig(buf, format=path.suffix[1:], dpi=150)
        atomic_write_bytes(path, buf.getvalue())
    return paths


def _budget_lines(ax: Any, budgets: Sequence[float]) -> None:
    for i, budget in enumerate(sorted(set(budgets))):
        ax.axvline(budget, color="0.55", linestyle="--", linewidth=0.9,
                   label="budget" if i == 0 else None)
        ax.annotate(f"{budget:.3g} ms", (budget, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(2, -10 - 9 * (i % 3)), textcoords="offset points", fontsize=7,
                    color="0.4")


def plot_front(points: pd.DataFrame, table: pd.DataFrame, out: Path, *, title: str,
               xlabel: str) -> list[Path]:
    """Accuracy (% top-1) against measured latency (ms): runs, means, fronts, budgets."""
    fig, ax = _figure()
    budgets = [b for b in table["budget_ms"] if isinstance(b, float) and math.isfinite(b)]
    x_max = max([*points["latency_ms"], *budgets]) * 1.05
    all_fronts = fronts(table)
    for i, name in enumerate(series_order(list(table["series"].unique()))):
        colour, marker = style_of(name, i)
        runs = points[points["series"] == name]
        means = table[table["series"] == name]
        ax.scatter(runs["latency_ms"], runs["acc_pct"], color=colour, marker=marker, s=14,
                   alpha=0.35, linewidths=0)
        ax.errorbar(means["latency_ms"], means["acc_pct"], xerr=means["latency_std_ms"],
                    yerr=means["acc_std_pct"], fmt=marker, color=colour, markersize=7,
                    capsize=2, label=f"{name} ({len(runs)} run{'s' if len(runs) != 1 else ''})")
        if name != TEACHER:
            xs, ys = step_xy(all_fronts[name], x_max)
            ax.step(xs, ys, where="post", color=colour, linewidth=1.4, alpha=0.9)
    _budget_lines(ax, budgets)
    ax.set_xlim(left=0, right=x_max)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (% top-1)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_figure(fig, out)


def plot_staircase(stair: Staircase, choices: Sequence[tuple[str, str, int]], out: Path, *,
                   title: str) -> list[Path]:
    """A slot's predicted latency over its widths, with the width each plan chose marked.

    ``choices``: (series, label, width) per plan.
    """
    fig, ax = _figure((7.0, 4.2))
    ax.step(stair.widths, stair.ms, where="mid", color="0.25", linewidth=1.2,
            label=f"T_slot(w), {stair.slot}")
    seen: dict[str, int] = {}
    for k, (name, label, width) in enumerate(choices):
        colour, marker = style_of(name, len(seen))
        first = name not in seen
        seen.setdefault(name, len(seen))
        ax.plot([width], [stair.at(width)], marker=marker, color=colour, markersize=9,
                linestyle="none", label=name if first else None, alpha=0.85)
        # Alternate above/below and step outwards so labels of neighbouring widths don't collide.
        dy = (8 + 9 * (k % 3)) * (1 if k % 2 == 0 else -1) - (4 if k % 2 else 0)
        ax.annotate(label, (width, stair.at(width)), xytext=(4, dy),
                    textcoords="offset points", fontsize=7, color=colour)
    ax.set_xlabel(f"width of slot {stair.slot} (channels)")
    ax.set_ylabel("predicted latency of the slot's convs (ms)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, out)
