"""Plans made on the rows as measured against plans made on smoothed rows, measured together.

The winner's curse, measured: the planner picks what its table makes look cheap,
so its plans are mispredicted more than random students. For one LUT and one
family, perf, pruned (a fixed synthetic Fisher order, as in ``prediction.py``)
and uniform students are planned at ``--budgets`` budgets (margin 0) twice: on
the rows as measured (``LatencyView(smooth=False)``) and on smoothed rows (the
default). Every distinct student is then measured end to end, all of them
together in interleaved rounds, in two passes (ORT, this CPU, 1 thread, the
default protocol). Per reading and strategy: the mean and largest
``measured / predicted - 1`` and the share measured within its budget.

    python benchmarks/plan_truth.py --lut benchmarks/results/prediction/luts/resnet18_224_ort-all.parquet \\
        --family resnet18 --input-size 224
    python benchmarks/plan_truth.py --lut ~/.local/share/perfstudent/lut.sqlite --family resnet20 \\
        --input-size 28 --in-channels 1

Run it alone on the machine (``../shared/tools/exclusive --timing -- ...``).
Writes ``results/plan_truth_<family>_<size>.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import conditions, write_result
from prediction import synthetic_saliency

from perfstudent.lut import LatencyTable, LatencyView
from perfstudent.lut.transfer import import_frame, read_frame
from perfstudent.measurement import Measurement
from perfstudent.plan.planner import InfeasibleBudget, make_plan
from perfstudent.plan.problem import build_problem
from perfstudent.plan.saliency import Saliency
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.profiler.measure import PROTOCOLS
from perfstudent.students import full_spec

STRATEGIES = ("perf", "pruned", "uniform")


def readings(lut: Path) -> tuple[LatencyView, LatencyView]:
    """(as measured, smoothed) views of the LUT's only ORT `all` 1-thread fingerprint."""
    with tempfile.TemporaryDirectory() as tmp:
        if lut.suffix in (".parquet", ".csv"):
            table = LatencyTable.open(Path(tmp) / "l.sqlite")
            import_frame(table, read_frame(lut))
        else:
            table = LatencyTable.open(lut, create=False)
        with table:
            (fp,) = table.fingerprints()
            rows, overheads = table.rows(fp), table.overheads(fp)
    return LatencyView(fp, rows, overheads, smooth=False), LatencyView(fp, rows, overheads)


def plans(views: dict[str, LatencyView], base: Any, saliency: Saliency, count: int) -> list[dict[str, Any]]:
    smooth = views["smoothed"]
    full = smooth.predict(base).total_ms
    smallest = build_problem(smooth, base, {s: [1.0] * w for s, w in base.widths.items()},
                             1e9).smallest_ms()
    out = []
    for budget in np.linspace(smallest + 0.15 * (full - smallest), 0.9 * full, count):
        for reading, view in views.items():
            for strategy in STRATEGIES:
                try:
                    plan = make_plan(strategy, float(budget), view, base,
                                     saliency if strategy == "pruned" else None)
                except InfeasibleBudget:
                    continue
                out.append({"reading": reading, "strategy": strategy, "budget_ms": float(budget),
                            "predicted_ms": plan.predicted_ms, "spec": plan.spec})
    return out


def measure(specs: list[Any], passes: int = 2) -> list[float]:
    backend = get_backend("onnxruntime", get_device("local"), 1)
    try:
        items = [backend.prepare_model(s) for s in specs]
        runs = [backend.measure(items, PROTOCOLS["default"]) for _ in range(passes)]
    finally:
        backend.close()
    return [Measurement([x for r in ms for x in r.samples_ms], ms[0].estimator, ms[0].inner).ms
            for ms in zip(*runs, strict=True)]


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for reading in ("as measured", "smoothed"):
        for strategy in STRATEGIES:
            err = [r["measured_ms"] / r["predicted_ms"] - 1 for r in rows
                   if r["reading"] == reading and r["strategy"] == strategy]
            within = [r["measured_ms"] <= r["budget_ms"] for r in rows
                      if r["reading"] == reading and r["strategy"] == strategy]
            if err:
                out.append({"reading": reading, "strategy": strategy, "plans": len(err),
                            "mean_err_pct": 100 * float(np.mean(err)),
                            "max_err_pct": 100 * float(np.max(err)),
                            "within_budget": float(np.mean(within))})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lut", type=Path, required=True, help="LUT (.sqlite) or export (.parquet)")
    parser.add_argument("--family", required=True)
    parser.add_argument("--input-size", type=int, required=True)
    parser.add_argument("--in-channels", type=int, default=None)
    parser.add_argument("--budgets", type=int, default=6)
    args = parser.parse_args()
    base = full_spec(args.family, args.input_size, args.in_channels)
    raw, smooth = readings(args.lut.expanduser())
    with tempfile.TemporaryDirectory() as tmp:
        saliency = Saliency.load(synthetic_saliency(args.family, args.input_size, Path(tmp) / "s.json"))
    if saliency.in_channels != base.in_channels:  # the synthetic order is for the default input
        saliency = Saliency(base.family, base.input_size, base.in_channels, base.num_classes,
                            saliency.slots, teacher=saliency.teacher)
    made = plans({"as measured": raw, "smoothed": smooth}, base, saliency, args.budgets)
    specs = list({tuple(sorted(p["spec"].widths.items())): p["spec"] for p in made}.values())
    data = conditions()
    ms = dict(zip([tuple(sorted(s.widths.items())) for s in specs], measure(specs), strict=True))
    rows = [{k: v for k, v in p.items() if k != "spec"} | {
        "widths": dict(p["spec"].widths), "measured_ms": ms[tuple(sorted(p["spec"].widths.items()))]}
        for p in made]
    table = summary(rows)
    out = write_result(f"plan_truth_{args.family}_{args.input_size}",
                       data | {"lut": str(args.lut), "distinct_students": len(specs),
                               "summary": table, "plans": rows})
    print("| reading | strategy | plans | mean error | largest | within budget |")
    print("|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['reading']} | {r['strategy']} | {r['plans']} | {r['mean_err_pct']:+.1f}% | "
              f"{r['max_err_pct']:+.1f}% | {100 * r['within_budget']:.0f}% |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
