"""Latency truth: does the LUT predict what a deployed student measures, better than the proxies?

For every ``FAMILY:SIZE`` x backend setting (default: resnet20:32, resnet56:32,
wrn-16-2:32, resnet18:224 x ORT ``all``, ORT ``extended``, torch; 1 thread):

1. ``sweep``: ``perfstudent profile`` (adaptive, default tolerance) into a fresh
   LUT of that setting: wall time, rows measured, and the exhaustive count
   (every context at every width, plus the anchors) they are a share of.
2. ``validate``: ``perfstudent lut validate`` with ``--samples`` students of every
   kind (uniform slots, one fraction per stage, a few full and the rest thin,
   the planner's outputs): the LUT, the sum of isolated layers and a MAC count
   calibrated on uniformly thinned students, side by side, and the noise floor
   (the same students measured twice). Its residuals are stored in the LUT.
3. ``budget``: perf, pruned and uniform plans at ``--budgets`` budgets (spread
   between the smallest plannable student and the full network) with
   ``--margin auto`` (from step 2's residuals), all measured together: the
   share measured within budget and the median slack ``(budget - measured) /
   budget``. ``pruned`` needs a Fisher order: a fixed synthetic one (gamma
   scores, seed 0) stands in, since this benchmark is about latency only.

And once, ``repeat``: the resnet20:32 ORT ``all`` sweep run twice into fresh LUTs,
the share of the rows both hold that agree within ±3%; and ``adaptive``: an
exhaustive sweep of the same, against which the adaptive LUT's answer at every
(context, width) is compared (share within ±3%), with both row counts.

Every step writes its own JSON under ``benchmarks/results/prediction/`` and is
skipped when that file exists (``--force`` redoes it), so an interrupted run
resumes. ``--table`` writes ``prediction.md`` from whatever results exist.
Run it alone on the machine (through ``../shared/tools/exclusive --timing``):
every figure is a latency.

    python benchmarks/prediction.py --workdir /tmp/prediction
    python benchmarks/prediction.py --table
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, conditions

OUT = RESULTS / "prediction"
SETTINGS = {"ort-all": ["--backend", "onnxruntime", "-o", "opt_level=all"],
            "ort-extended": ["--backend", "onnxruntime", "-o", "opt_level=extended"],
            "torch": ["--backend", "torch"]}
FAMILIES = ["resnet20:32", "resnet56:32", "wrn-16-2:32", "resnet18:224"]


def perfstudent(*args: str) -> str:
    """Run the installed CLI (as a user would) and return its stdout; fail loudly."""
    done = subprocess.run([sys.executable, "-m", "perfstudent", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"perfstudent {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def saved(name: str, force: bool) -> dict[str, Any] | None:
    path = OUT / f"{name}.json"
    return None if force or not path.exists() else json.loads(path.read_text())


def save(name: str, data: dict[str, Any]) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    data = conditions() | data
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    return data


def exhaustive_rows(family: str, size: int) -> int:
    from perfstudent.students import get_family

    fam = get_family(family)
    contexts = set(fam.slot_chains(fam.full_spec(size)).values())
    return sum(c.block.full for c in contexts) + len({c.block for c in contexts if not c.alone})


def sweep_step(family: str, size: int, setting: str, lut: Path, force: bool) -> dict[str, Any]:
    name = f"sweep_{family}_{size}_{setting}"
    if (found := saved(name, force)) is not None:
        return found
    lut.unlink(missing_ok=True)
    start = time.perf_counter()
    report = json.loads(perfstudent("profile", "--arch", family, "--input-size", str(size),
                                    *SETTINGS[setting], "--lut", str(lut), "--json"))
    wall = time.perf_counter() - start
    total = exhaustive_rows(family, size)
    return save(name, {"family": family, "input_size": size, "setting": setting, "lut": str(lut),
                       "report": report, "command_wall_s": wall, "exhaustive_rows": total,
                       "measured_share": report["measured"] / total})


def validate_step(family: str, size: int, setting: str, lut: Path, samples: int,
                  force: bool) -> dict[str, Any]:
    name = f"validate_{family}_{size}_{setting}"
    if (found := saved(name, force)) is not None:
        return found
    report = json.loads(perfstudent("lut", "validate", "--arch", family, "--input-size", str(size),
                                    *SETTINGS[setting], "--samples", str(samples), "--seed", "1",
                                    "--lut", str(lut), "--json"))
    return save(name, {"family": family, "input_size": size, "setting": setting, "report": report})


def synthetic_saliency(family: str, size: int, path: Path) -> Path:
    from perfstudent.plan.saliency import Saliency
    from perfstudent.students import full_spec

    spec = full_spec(family, size)
    rng = np.random.default_rng(0)
    slots = {s: (rng.gamma(0.7, size=w) * rng.uniform(0.2, 5.0)).tolist() for s, w in spec.widths.items()}
    Saliency(family, size, spec.in_channels, spec.num_classes, slots,
             teacher={"note": "synthetic Fisher-like scores for the latency benchmark"}).save(path)
    return path


def budget_step(family: str, size: int, setting: str, lut: Path, budgets: int, workdir: Path,
                force: bool) -> dict[str, Any]:
    name = f"budget_{family}_{size}_{setting}"
    if (found := saved(name, force)) is not None:
        return found
    from perfstudent.lut import LatencyTable
    from perfstudent.pipeline import Target
    from perfstudent.plan.planner import Plan
    from perfstudent.plan.problem import build_problem
    from perfstudent.profiler.backends import get_backend
    from perfstudent.profiler.devices import get_device
    from perfstudent.profiler.measure import PROTOCOLS
    from perfstudent.students import full_spec

    options = dict(o.split("=", 1) for o in SETTINGS[setting][3::2])
    backend_name = SETTINGS[setting][1]
    base = full_spec(family, size)
    with LatencyTable.open(lut, create=False) as table:
        view = Target("local", backend_name, 1, options).view(table)
    full = view.predict(base).total_ms
    smallest = build_problem(view, base, {s: [1.0] * w for s, w in base.widths.items()}, 1e9).smallest_ms()
    grid = [smallest + f * (full - smallest) for f in np.linspace(0.35, 0.9, budgets)]
    sal = synthetic_saliency(family, size, workdir / f"saliency_{family}_{size}.json")
    plans = []
    from perfstudent.plan.strategies import default_strategy_names

    for strategy in default_strategy_names():  # no teacher here for torch-pruning
        for budget in grid:
            out = workdir / f"plan_{family}_{size}_{setting}_{strategy}_{budget:.4f}.json"
            perfstudent("plan", "--arch", family, "--input-size", str(size), *SETTINGS[setting],
                        "--budget", f"{budget:.6f}ms", "--saliency", str(sal), "--strategy", strategy,
                        "--lut", str(lut), "--out", str(out))
            plans.append(Plan.load(out))
    backend = get_backend(backend_name, get_device("local"), 1, **options)
    try:
        items = [backend.prepare_model(p.spec) for p in plans]
        measured = [m.ms for m in backend.measure(items, PROTOCOLS["default"])]
    finally:
        backend.close()
    rows = [{"strategy": p.strategy, "budget_ms": p.budget_ms, "margin_ms": p.margin_ms,
             "predicted_ms": p.predicted_ms, "measured_ms": m, "within": m <= p.budget_ms,
             "slack": (p.budget_ms - m) / p.budget_ms, "margin_note": p.margin_note}
            for p, m in zip(plans, measured, strict=True)]
    return save(name, {"family": family, "input_size": size, "setting": setting, "plans": rows,
                       "within_share": float(np.mean([r["within"] for r in rows])),
                       "median_slack": statistics.median(r["slack"] for r in rows)})


def repeat_step(workdir: Path, force: bool) -> dict[str, Any]:
    name = "repeat_resnet20_32_ort-all"
    if (found := saved(name, force)) is not None:
        return found
    from perfstudent.lut import LatencyTable

    rows = []
    for i in (1, 2):
        lut = workdir / f"repeat{i}.sqlite"
        if force:  # otherwise a sweep finished before a crash is kept (its re-run measures nothing)
            lut.unlink(missing_ok=True)
        perfstudent("profile", "--arch", "resnet20", "--input-size", "32", *SETTINGS["ort-all"],
                    "--lut", str(lut), "--json")
        with LatencyTable.open(lut, create=False) as table:
            (fp,) = table.fingerprints()
            rows.append({c: m.ms for c, m in table.rows(fp).items()})
    common = sorted(set(rows[0]) & set(rows[1]), key=lambda c: c.key())
    diffs = [abs(rows[0][c] / rows[1][c] - 1) for c in common]
    return save(name, {"common_rows": len(common), "within_3pct": float(np.mean(np.asarray(diffs) <= 0.03)),
                       "median_diff_pct": 100 * statistics.median(diffs),
                       "max_diff_pct": 100 * max(diffs)})


def with_drift_corrected(report: dict[str, Any]) -> dict[str, Any]:
    """The report's summary, with the drift-corrected LUT scores computed if it lacks them
    (reports written before ``lut validate`` printed that diagnostic)."""
    from perfstudent.pipeline.validate import scores

    summary = dict(report["summary"])
    drift = summary.get("drift_since_sweep_pct")
    if drift and "lut, drift-corrected" not in summary:
        factor = 1 + drift["median"] / 100
        students = report["students"]
        summary["lut, drift-corrected"] = scores([s["predicted_ms"]["lut"] * factor for s in students],
                                                 [s["measured_ms"] for s in students])
    return summary


def adaptive_step(workdir: Path, force: bool) -> dict[str, Any]:
    name = "adaptive_resnet20_32_ort-all"
    if (found := saved(name, force)) is not None:
        return found
    from perfstudent.lut import LatencyTable
    from perfstudent.students import full_spec, get_family

    adaptive = workdir / "resnet20_32_ort-all.sqlite"
    if not adaptive.exists():
        raise SystemExit("run the sweep step of resnet20:32 ort-all first")
    exhaustive = workdir / "exhaustive.sqlite"
    exhaustive.unlink(missing_ok=True)
    start = time.perf_counter()
    perfstudent("profile", "--arch", "resnet20", "--input-size", "32", *SETTINGS["ort-all"],
                "--exhaustive", "--lut", str(exhaustive), "--json")
    wall = time.perf_counter() - start
    views = []
    for path in (adaptive, exhaustive):
        with LatencyTable.open(path, create=False) as table:
            (fp,) = table.fingerprints()
            views.append((table.view(fp), table.count(fp)))
    spec = full_spec("resnet20", 32)
    diffs = [abs(views[0][0].chain_ms(c.at(w)) / views[1][0].chain_ms(c.at(w)) - 1)
             for c in set(get_family("resnet20").slot_chains(spec).values())
             for w in range(1, c.block.full + 1)]
    return save(name, {"adaptive_rows": views[0][1], "exhaustive_rows": views[1][1],
                       "share": views[0][1] / views[1][1], "exhaustive_wall_s": wall,
                       "answers": len(diffs), "within_3pct": float(np.mean(np.asarray(diffs) <= 0.03)),
                       "within_5pct": float(np.mean(np.asarray(diffs) <= 0.05)),
                       "median_diff_pct": 100 * statistics.median(diffs)})


def table() -> str:
    """The README table from the results present."""
    lines = ["| family @input | setting | predictor | ±5% | ±10% | MAPE | bias | ρ |",
             "|---|---|---|---|---|---|---|---|"]
    drifts = []
    for path in sorted(OUT.glob("validate_*.json")):
        data = json.loads(path.read_text())
        summary = with_drift_corrected(data["report"])
        for name in ("lut", "isolated", "macs", "lut, drift-corrected", "noise_floor"):
            if name not in summary:
                continue
            r = summary[name]
            label = "noise floor" if name == "noise_floor" else name
            lines.append(f"| {data['family']} @{data['input_size']} | {data['setting']} | {label} | "
                         f"{100 * r['within_5pct']:.0f}% | {100 * r['within_10pct']:.0f}% | "
                         f"{r['mape_pct']:.1f}% | {r['bias_pct']:+.1f}% | {r['spearman']:.3f} |")
        if "drift_since_sweep_pct" in summary:
            d = summary["drift_since_sweep_pct"]
            drifts.append(f"{data['family']} @{data['input_size']} {data['setting']}: {d['median']:+.1f}% "
                          f"({d['min']:+.1f}% to {d['max']:+.1f}%)")
    if drifts:
        lines += ["", "Drift between the sweep and the validation (the sweep's calibration networks "
                      "measured again): " + "; ".join(drifts) + "."]
    lines += ["", "| family @input | setting | sweep wall (s) | rows | of exhaustive | overhead share |",
              "|---|---|---|---|---|---|"]
    for path in sorted(OUT.glob("sweep_*.json")):
        d = json.loads(path.read_text())
        share = d["report"].get("overhead_share")
        lines.append(f"| {d['family']} @{d['input_size']} | {d['setting']} | {d['report']['wall_s']:.0f} | "
                     f"{d['report']['measured']} | {100 * d['measured_share']:.0f}% | "
                     f"{'' if share is None else f'{100 * share:+.0f}%'} |")
    lines += ["", "| family @input | setting | plans | measured ≤ budget | median slack |",
              "|---|---|---|---|---|"]
    for path in sorted(OUT.glob("budget_*.json")):
        d = json.loads(path.read_text())
        lines.append(f"| {d['family']} @{d['input_size']} | {d['setting']} | {len(d['plans'])} | "
                     f"{100 * d['within_share']:.0f}% | {100 * d['median_slack']:.1f}% |")
    adaptive = OUT / "adaptive_resnet20_32_ort-all.json"
    if adaptive.exists():
        d = json.loads(adaptive.read_text())
        lines += ["", f"Adaptive against exhaustive (resnet20 @32, ORT all): {d['adaptive_rows']} of "
                      f"{d['exhaustive_rows']} rows ({100 * d['share']:.0f}%); its answers at all "
                      f"{d['answers']} (context, width) pairs are within ±3% of the exhaustive rows for "
                      f"{100 * d['within_3pct']:.0f}% (±5%: {100 * d['within_5pct']:.0f}%, median "
                      f"{d['median_diff_pct']:.1f}%), a figure that includes the two sweeps' "
                      f"run-to-run noise."]
    repeat = OUT / "repeat_resnet20_32_ort-all.json"
    if repeat.exists():
        d = json.loads(repeat.read_text())
        lines += ["", f"Repeatability (resnet20 @32, ORT all, the sweep twice): {d['common_rows']} common "
                      f"rows, {100 * d['within_3pct']:.0f}% within ±3%, median difference "
                      f"{d['median_diff_pct']:.2f}%, largest {d['max_diff_pct']:.1f}%."]
    text = "\n".join(lines) + "\n"
    (RESULTS / "prediction.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--budgets", type=int, default=4)
    parser.add_argument("--steps", default="sweep,validate,budget,repeat,adaptive")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/perfstudent-prediction"))
    parser.add_argument("--force", action="store_true", help="Redo steps whose results exist.")
    parser.add_argument("--table", action="store_true", help="Only write prediction.md.")
    args = parser.parse_args()
    if args.table:
        print(table())
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    steps = set(args.steps.split(","))
    for item in args.families.split(","):
        family, size = item.split(":")[0], int(item.split(":")[1])
        for setting in args.settings.split(","):
            lut = args.workdir / f"{family}_{size}_{setting}.sqlite"
            print(f"== {family} @{size} {setting}", flush=True)
            if "sweep" in steps:
                print(json.dumps(sweep_step(family, size, setting, lut, args.force)["report"]), flush=True)
            if "validate" in steps:
                found = validate_step(family, size, setting, lut, args.samples, args.force)
                summary = found["report"]["summary"]
                keys = ("lut", "noise_floor", "drift_since_sweep_pct")
                print(json.dumps({k: summary.get(k) for k in keys}), flush=True)
            if "budget" in steps and setting != "ort-extended":
                d = budget_step(family, size, setting, lut, args.budgets, args.workdir, args.force)
                print(f"budget: {d['within_share']:.0%} within, median slack {d['median_slack']:.1%}",
                      flush=True)
    if "repeat" in steps:
        print(json.dumps(repeat_step(args.workdir, args.force)), flush=True)
    if "adaptive" in steps:
        print(json.dumps(adaptive_step(args.workdir, args.force)), flush=True)
    print(table())


if __name__ == "__main__":
    main()
