"""Budget adherence of ``perf`` plans, and saliency kept by perf vs pruned vs uniform.

For each ``ARCH:SIZE`` (default resnet20:32, resnet56:32, resnet18:224) and a
grid of ``--budgets`` budgets spread geometrically from the smallest achievable
latency + 10 % of the range up to 0.95× the full network's predicted latency, plan ``perf``
(default margin 0, or ``--margin-frac``·budget) with the real LUT, measure the
planned student end to end (``measure_spec``, same device/backend/threads as
the LUT) and record measured ≤ budget and the slack ``(budget − measured) / budget``.
Targets: share within budget ≥ 95 %, median slack ≤ 5 %.

Saliency kept: with ``--saliency ARCH=FILE`` the Fisher scores of a teacher;
otherwise every channel counts 1 (kept = channel fraction, and ``pruned``, which
needs Fisher order, is skipped).

Needs a LUT filled by ``perfstudent profile`` for each arch and size:

    perfstudent profile --device local --backend onnxruntime --threads 1 --arch resnet20 --lut L
    python benchmarks/budget_adherence.py --lut L --arch resnet20:32 --budgets 10
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from perfstudent.errors import InputError
from perfstudent.students import full_spec
from perfstudent.students.planner import make_plan
from perfstudent.students.saliency import Saliency
from perfstudent.students.slotcost import build_problem

RESULTS = Path(__file__).parent / "results"


def budget_grid(view: Any, base: Any, count: int) -> tuple[list[float], float, float]:
    full = make_plan("perf", 1e9, view, base).predicted_ms
    smallest = build_problem(view, base, {s: [1.0] * w for s, w in base.widths.items()}, full).smallest_ms()
    low = smallest + 0.1 * (full - smallest)
    if low <= 0:  # a negative LUT overhead term can make the smallest prediction negative
        low = 0.1 * full
    grid = np.geomspace(low, 0.95 * full, count).tolist()
    return grid, smallest, full


def kept_by_strategy(view: Any, base: Any, budget: float, sal: Saliency | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for strategy in ("perf", "pruned", "uniform"):
        if strategy == "pruned" and sal is None:
            continue
        try:
            out[strategy] = make_plan(strategy, budget, view, base, sal).saliency_kept
        except InputError:
            out[strategy] = None
    return out


def run_arch(args: argparse.Namespace, view: Any, arch: str, size: int,
             sal: Saliency | None) -> list[dict[str, Any]]:
    from perfstudent.profiler.measure import PROTOCOLS, measure_spec

    # a saliency file fixes the input channels and classes (e.g. a digits teacher: 1 channel)
    base = full_spec(arch, size, *((sal.in_channels, sal.num_classes) if sal else (None, None)))
    budgets, smallest, full = budget_grid(view, base, args.budgets)
    rows = []
    for budget in tqdm(budgets, desc=f"adherence {arch}", file=sys.stderr):
        plan = make_plan("perf", budget, view, base, sal, args.margin_frac * budget)
        m = measure_spec(plan.spec, args.device, args.backend, args.threads,
                         protocol=PROTOCOLS[args.protocol])
        rows.append({"arch": arch, "input_size": size, "budget_ms": budget, "smallest_ms": smallest,
                     "full_ms": full, "predicted_ms": plan.predicted_ms, "measured_ms": m.median_ms,
                     "measured_p90_ms": m.p90_ms, "noisy": m.noisy,
                     "within_budget": m.median_ms <= budget, "slack": (budget - m.median_ms) / budget,
                     "pred_error": plan.predicted_ms / m.median_ms - 1,
                     "widths": plan.spec.widths,
                     **{f"kept_{k}": v for k, v in kept_by_strategy(view, base, budget, sal).items()}})
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"plans": len(rows), "within_budget_share": float(np.mean([r["within_budget"] for r in rows])),
            "noisy_measurements": int(sum(bool(r["noisy"]) for r in rows)),
            "median_slack": statistics.median(r["slack"] for r in rows),
            "median_abs_pred_error": statistics.median(abs(r["pred_error"]) for r in rows)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lut", type=Path, required=True)
    parser.add_argument("--device", default="local")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--arch", action="append", default=None, help="ARCH:SIZE (repeatable)")
    parser.add_argument("--saliency", action="append", default=[], help="ARCH=FILE (repeatable)")
    parser.add_argument("--budgets", type=int, default=10)
    parser.add_argument("--margin-frac", type=float, default=0.0)
    parser.add_argument("--protocol", default="default")
    parser.add_argument("--out", type=Path, default=RESULTS / "budget_adherence.json")
    return parser.parse_args()


def main() -> None:
    from perfstudent.lut import LatencyTable

    args = parse_args()
    archs = [(a.split(":")[0], int(a.split(":")[1])) for a in
             (args.arch or ["resnet20:32", "resnet56:32", "resnet18:224"])]
    saliencies = {k: Saliency.load(Path(v)) for k, v in (s.split("=", 1) for s in args.saliency)}
    with LatencyTable.open(args.lut, create=False) as table:
        view = table.view_for(args.device, args.backend, threads=args.threads)
    rows, missing = [], {}
    load_before = os.getloadavg()
    for arch, size in archs:
        try:
            rows += run_arch(args, view, arch, size, saliencies.get(arch))
        except InputError as exc:  # e.g. the LUT lacks this arch: say so, go on with the others
            missing[f"{arch}:{size}"] = str(exc)
            print(f"skipped {arch}:{size}: {exc}", file=sys.stderr)
    per_arch = {f"{a}:{s}": summarise([r for r in rows if r["arch"] == a and r["input_size"] == s])
                for a, s in archs if any(r["arch"] == a for r in rows)}
    result = {"benchmark": "budget_adherence", "fingerprint": view.fingerprint.to_dict(),
              "margin_frac": args.margin_frac, "protocol": args.protocol,
              "cpu_count": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "overall": summarise(rows) if rows else None, "per_arch": per_arch, "missing": missing,
              "saliency": {k: v.teacher for k, v in saliencies.items()}, "rows": rows}
    write(args.out, result, rows)


def write(out: Path, result: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if rows:
        with out.with_suffix(".csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, [k for k in rows[0] if k != "widths"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    print(json.dumps({k: result[k] for k in ("overall", "per_arch", "missing")}, indent=2))


if __name__ == "__main__":
    main()
