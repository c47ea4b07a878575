"""Saliency kept by perf vs pruned vs uniform over a grid of budgets (no measuring).

Latency from ``--lut`` (a real LUT view) or, without it, the SYNTHETIC
staircase model (labelled so in the output; no measured number in it).
Saliency from ``--saliency FILE`` (Fisher scores of a real teacher); the
architecture, input size and channels are the file's.

    python benchmarks/strategies.py --saliency sal.json [--lut L.sqlite] --budgets 12
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from perfstudent.errors import InputError
from perfstudent.plan.planner import make_plan
from perfstudent.plan.problem import build_problem
from perfstudent.plan.saliency import Saliency
from perfstudent.plan.strategies import get_strategy, strategy_names
from perfstudent.plan.synthetic import StaircaseModel
from perfstudent.students import full_spec

RESULTS = Path(__file__).parent / "results"


def budget_grid(view: Any, base: Any, count: int) -> tuple[list[float], float, float]:
    """``count`` budgets from 1.15x the smallest plannable student to 0.95x the full network."""
    full = make_plan("perf", 1e9, view, base).predicted_ms
    ones = {s: [1.0] * w for s, w in base.widths.items()}
    smallest = build_problem(view, base, ones, full).smallest_ms()
    return np.geomspace(1.15 * smallest, 0.95 * full, count).tolist(), smallest, full


def kept_by_strategy(view: Any, base: Any, budget: float, sal: Saliency | None) -> dict[str, Any]:
    """Saliency kept by each strategy at ``budget`` (None where it does not fit)."""
    out: dict[str, Any] = {}
    for strategy in strategy_names():
        chooser = get_strategy(strategy)
        if (chooser.needs_saliency and sal is None) or chooser.needs_teacher:
            continue  # no teacher in this benchmark
        try:
            out[strategy] = make_plan(strategy, budget, view, base, sal).saliency_kept
        except InputError:
            out[strategy] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saliency", type=Path, required=True)
    parser.add_argument("--lut", type=Path, default=None)
    parser.add_argument("--device", default="local")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budgets", type=int, default=12)
    parser.add_argument("--out", type=Path, default=RESULTS / "strategies.json")
    args = parser.parse_args()
    sal = Saliency.load(args.saliency)
    view: Any
    if args.lut is None:
        view = StaircaseModel(noise=0.02, base_ms=5e-4, fixed_overhead_ms=5e-3)
        label = "SYNTHETIC staircase model (not measured)"
    else:
        from perfstudent.lut import LatencyTable
        from perfstudent.pipeline import Target

        with LatencyTable.open(args.lut, create=False) as table:
            view = Target(args.device, args.backend, args.threads).view(table)
        label = f"LUT {args.lut} ({view.fingerprint.label()})"
    base = full_spec(sal.family, sal.input_size, sal.in_channels, sal.num_classes)
    budgets, smallest, full = budget_grid(view, base, args.budgets)
    rows = [{"budget_ms": b, "budget_fraction_of_full": b / full,
             **{f"kept_{k}": v for k, v in kept_by_strategy(view, base, b, sal).items()}}
            for b in budgets]
    result = {"benchmark": "strategies", "latency_model": label, "family": sal.family,
              "input_size": sal.input_size, "saliency_teacher": sal.teacher, "full_ms": full,
              "smallest_ms": smallest, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Saliency kept: {sal.family} at {sal.input_size}px", "", f"Latency: {label}.", "",
             "| budget ms | × full | perf | pruned | uniform |", "|---|---|---|---|---|"]
    lines += [f"| {r['budget_ms']:.3f} | {r['budget_fraction_of_full']:.2f} | "
              + " | ".join("-" if r.get(f"kept_{k}") is None else f"{r[f'kept_{k}']:.4f}"
                           for k in ("perf", "pruned", "uniform")) + " |" for r in rows]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stdout)


if __name__ == "__main__":
    main()
