"""Planner wall time for resnet34 at 224×224 (target < 1 s per plan).

With ``--lut`` holding rows (and the overhead term) for the arch at this size,
the real LUT view is timed. Without one, the SYNTHETIC staircase latency model
(perfstudent.plan.synthetic, no measured number in it) is used and
the result is labelled so: it times the planner's own work (slot curves from
16 slots × up to 512 widths, Pareto filter, DP), which is what the target is
about. Times include everything make_plan does (building slot curves included).

    python benchmarks/planner_speed.py [--lut L.sqlite --device local --backend onnxruntime]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from perfstudent.errors import InputError
from perfstudent.plan.planner import make_plan
from perfstudent.plan.saliency import Saliency
from perfstudent.plan.synthetic import StaircaseModel
from perfstudent.students import full_spec

RESULTS = Path(__file__).parent / "results"


def latency_model(args: argparse.Namespace) -> tuple[Any, str]:
    if args.lut is None:
        return StaircaseModel(noise=0.03), "SYNTHETIC staircase model (not measured)"
    from perfstudent.lut import LatencyTable
    from perfstudent.pipeline import Target

    with LatencyTable.open(args.lut, create=False) as table:
        view = Target(args.device, args.backend, args.threads).view(table)
    return view, f"LUT {args.lut} ({view.fingerprint.label()})"


def random_saliency(arch: str, size: int, seed: int = 0) -> Saliency:
    """Gamma-distributed per-channel scores: a stand-in with Fisher's heavy tail, for timing only."""
    spec = full_spec(arch, size)
    rng = np.random.default_rng(seed)
    return Saliency(arch, size, spec.in_channels, spec.num_classes,
                    {s: rng.gamma(0.5, size=w).tolist() for s, w in spec.widths.items()})


def time_plans(model: Any, arch: str, size: int, repeats: int) -> list[dict[str, Any]]:
    base = full_spec(arch, size)
    sal = random_saliency(arch, size)
    full = make_plan("perf", 1e9, model, base).predicted_ms
    rows = []
    cases = [(s, f) for s in ("perf", "pruned", "uniform") for f in (0.4, 0.6, 0.8)]
    for strategy, fraction in tqdm(cases, desc="planner speed", file=sys.stderr):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            try:
                plan = make_plan(strategy, fraction * full, model, base, sal)
            except InputError as exc:  # infeasible at this fraction: record and move on
                plan, times = None, [float("nan")]
                print(f"{strategy} at {fraction:.0%}: {exc}", file=sys.stderr)
                break
            times.append(time.perf_counter() - start)
        rows.append({"strategy": strategy, "budget_fraction": fraction, "budget_ms": fraction * full,
                     "seconds_median": statistics.median(times), "seconds_max": max(times),
                     "predicted_ms": None if plan is None else plan.predicted_ms,
                     "saliency_kept": None if plan is None else plan.saliency_kept})
    return rows


def _fmt(value: float | None) -> str:
    return "infeasible" if value is None else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lut", type=Path, default=None)
    parser.add_argument("--device", default="local")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--arch", default="resnet34")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "planner_speed.json")
    args = parser.parse_args()
    model, label = latency_model(args)
    rows = time_plans(model, args.arch, args.input_size, args.repeats)
    worst = max(r["seconds_max"] for r in rows)
    result = {"benchmark": "planner_speed", "arch": args.arch, "input_size": args.input_size,
              "latency_model": label, "python": platform.python_version(), "repeats": args.repeats,
              "target_s": 1.0, "worst_s": worst, "meets_target": worst < 1.0, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Planner speed: {args.arch} at {args.input_size}x{args.input_size}", "",
             f"Latency model: {label}. Saliency: random gamma scores (timing only).", "",
             "| strategy | budget (× full) | median s | max s | saliency kept |", "|---|---|---|---|---|"]
    lines += [f"| {r['strategy']} | {r['budget_fraction']:.1f} | {r['seconds_median']:.3f} | "
              f"{r['seconds_max']:.3f} | {_fmt(r['saliency_kept'])} |"
              for r in rows]
    lines += ["", f"Worst case {worst:.3f} s (target < 1 s): {'met' if worst < 1.0 else 'NOT met'}."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
