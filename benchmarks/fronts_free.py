"""Training-free fronts (issue 14, item 4): saliency and channels kept against measured latency.

For one family at one input size, given a trained teacher (``perfstudent train``), its Fisher
saliency (``perfstudent saliency``) and a LUT of the target (default: this CPU, ONNX Runtime
``all``, 1 thread):

1. ``plan``: a grid of ``--budgets`` budgets, geometric from ``--low`` x the smallest student
   (every slot 1 channel) to ``--high`` x the full network, as predicted; at each, every
   registered strategy (perf, pruned, uniform, torch-pruning) planned as ``perfstudent plan`` does
   (:func:`perfstudent.pipeline.plan`, margin ``--margin``), and ``perfstudent enhance``
   (:func:`perfstudent.pipeline.enhance`) applied to the pruned and Torch-Pruning plans,
   giving ``pruned+enhance`` and ``torch-pruning+enhance``. The enhance tolerance is by
   default ``budget``: the room its source plan left under the budget (less the margin), so
   the enhanced student is a plan for the same budget; any ``perfstudent enhance``
   tolerance (``1%``, ``20us``) may be given instead. Recorded per plan: predicted ms,
   saliency kept (share of the teacher's total Fisher saliency), channels kept (share of the
   prunable channels, i.e. of the slots' full widths) and the widths.
2. ``measure``: every distinct student end to end with the target's timing protocol (that of
   ``perfstudent measure`` and ``lut validate``), interleaved as ``lut validate`` does: in
   groups of the protocol's ``group``, shuffled so that each group mixes strategies and
   budgets, ``--passes`` passes over all groups; a student's figure is the protocol's
   estimator over the samples of every pass. The load average before and after is recorded.

Each step writes ``benchmarks/results/fronts_free/{plans,measured}_<family>_<size>.json``
and is skipped when that file exists (``--force`` redoes it; a measurement of older plans is
redone). ``--table`` writes ``fronts_free.md`` and one ``<family>_<size>.png`` per family
(saliency kept and channels kept against measured latency, one line per strategy). Timing:
run it alone (``../shared/tools/exclusive --timing``). ``--make-imagefolder DIR`` writes
Fashion-MNIST as an image folder (to train teachers at 32 or 224 px; benchmarks/README.md).

    python benchmarks/fronts_free.py --family resnet56 --input-size 32 --teacher runs/t56 \\
        --saliency sal56.json --lut r56.sqlite
    python benchmarks/fronts_free.py --table
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, conditions

OUT = RESULTS / "fronts_free"
ENHANCED = ("pruned", "torch-pruning")
BUDGET = "budget"  # the enhance tolerance: the room the source plan left under its budget


# -- inputs -------------------------------------------------------------------------------
def target_of(args: argparse.Namespace) -> Any:
    from perfstudent.pipeline import Target

    options = dict(o.split("=", 1) for o in args.option)
    return Target(args.device, args.backend, args.threads, options, args.protocol)


def base_of(args: argparse.Namespace, sal: Any) -> Any:
    """The full network planned for: the family at the input size, the saliency file's
    channels and classes; the saliency and the teacher must both be of it."""
    from perfstudent.distill.runs import load_run
    from perfstudent.students import full_spec, get_family

    base = full_spec(args.family, args.input_size, sal.in_channels, sal.num_classes)
    sal.check_matches(base.family, base.input_size, get_family(base.family).full_widths())
    teacher = load_run(args.teacher).spec
    if teacher != base:
        raise SystemExit(f"teacher {args.teacher} is {teacher.family} at {teacher.input_size}px "
                         f"({teacher.in_channels} channels, {teacher.num_classes} classes), not "
                         f"the saliency's {base.family} at {base.input_size}px")
    return base


def teacher_info(path: Path) -> dict[str, Any]:
    """How long the teacher was trained and how well: what the fronts rest on."""
    from perfstudent.distill.runs import load_run

    run = load_run(path)
    s = run.summary
    return {"run": str(path.resolve()), "data": s.data, "epochs_done": s.epochs_done,
            "best_test_acc": s.best_test_acc, "train_limit": run.config.get("train_limit"),
            "train_seconds": sum(float(m.get("seconds", 0)) for m in run.metrics())}


def budget_grid(view: Any, base: Any, count: int, low: float,
                high: float) -> tuple[list[float], float, float]:
    """``count`` budgets, geometric from ``low`` x the smallest student (every slot 1 channel
    wide: the least every strategy can plan; on a noisy LUT perf may go lower, on widths whose
    rows are cheaper than width 1) to ``high`` x the full network, both as the planner predicts
    them; with those two."""
    from perfstudent.plan.enhance import predicted_ms

    full = predicted_ms(view, base)
    smallest = predicted_ms(view, base.with_widths({s: 1 for s in base.widths}))
    if low * smallest >= high * full:
        raise SystemExit(f"--low x smallest ({low * smallest:.4g} ms) is not below --high x full "
                         f"({high * full:.4g} ms)")
    return np.geomspace(low * smallest, high * full, count).tolist(), smallest, full


# -- plan ---------------------------------------------------------------------------------
def row_of(plan: Any, budget: float, sal: Any, base: Any) -> dict[str, Any]:
    """What the fronts need of one plan."""
    widths = dict(plan.spec.widths)
    row = {"strategy": plan.strategy, "budget_ms": budget, "margin_ms": plan.margin_ms,
           "predicted_ms": plan.predicted_ms, "saliency_kept": sal.kept(widths),
           "channels_kept": sum(widths.values()) / sum(base.widths.values()), "widths": widths,
           "multiplier": plan.multiplier, "macs": plan.macs, "warnings": plan.warnings}
    if plan.enhanced is not None:
        e = plan.enhanced
        row |= {"source_predicted_ms": e.predicted_before_ms, "tolerance": e.tolerance,
                "tolerance_ms": e.tolerance_ms, "channels_gained": sum(e.gained.values())}
    return row


def tolerance_for(source: Any, text: str) -> Any:
    """The enhance tolerance: ``budget`` (what ``source`` left under its budget) or as given."""
    from perfstudent.plan.enhance import Tolerance, parse_tolerance

    if text != BUDGET:
        return parse_tolerance(text)
    room = max(0.0, source.budget_ms - source.margin_ms - source.predicted_ms)
    return Tolerance(f"{BUDGET} ({room:.6g} ms)", ms=room)


def plans_at(target: Any, args: argparse.Namespace, budget: float, base: Any,
             sal: Any) -> list[dict[str, Any]]:
    """Every strategy's plan at ``budget`` and the enhanced ones (infeasible: no widths)."""
    from perfstudent.pipeline import enhance, plan
    from perfstudent.plan.planner import InfeasibleBudget

    rows = []
    for strategy in args.strategies:
        try:
            found = plan(target, args.lut, strategy, budget, base, sal, args.margin_ms, args.teacher)
        except InfeasibleBudget as exc:
            rows.append({"strategy": strategy, "budget_ms": budget, "infeasible": str(exc)})
            continue
        rows.append(row_of(found, budget, sal, base))
        if strategy in args.enhance:
            objective = sal if args.enhance_by == "saliency" else None
            better = enhance(target, args.lut, found.spec, tolerance_for(found, args.tolerance),
                             objective, found)
            rows.append(row_of(better, budget, sal, base))
    return rows


def plan_step(target: Any, args: argparse.Namespace, name: str) -> dict[str, Any]:
    if (found := saved(args.out_dir, f"plans_{name}", args.force)) is not None:
        return found
    from perfstudent.pipeline import open_view
    from perfstudent.plan.saliency import Saliency
    from perfstudent.plan.strategies import get_strategy

    for strategy in args.strategies:
        get_strategy(strategy).check_available()  # an install hint before any work
    sal = Saliency.load(args.saliency)
    base = base_of(args, sal)
    view = open_view(target, args.lut)
    budgets, smallest, full = budget_grid(view, base, args.budgets, args.low, args.high)
    start = time.perf_counter()
    rows = [r for b in budgets for r in plans_at(target, args, b, base, sal)]
    return save(args.out_dir, f"plans_{name}", {
        "family": base.family, "input_size": base.input_size, "in_channels": base.in_channels,
        "num_classes": base.num_classes, "lut": str(args.lut), "fingerprint": view.fingerprint.label(),
        "teacher": teacher_info(args.teacher), "saliency": {"file": str(args.saliency),
                                                            "batches": sal.batches,
                                                            "samples": sal.samples,
                                                            "mode": sal.mode},
        "margin_ms": args.margin_ms, "tolerance": args.tolerance, "enhance_by": args.enhance_by,
        "smallest_ms": smallest, "full_ms": full, "budgets_ms": budgets,
        "plan_wall_s": time.perf_counter() - start, "plans": rows})


# -- measure ------------------------------------------------------------------------------
def widths_key(widths: dict[str, int]) -> str:
    return json.dumps(widths, sort_keys=True)


def timed_passes(backend: Any, specs: list[Any], protocol: Any, passes: int) -> list[list[Any]]:
    """Per spec, its Measurement of every pass: prepared once, timed in groups of the
    protocol's ``group`` (each group together, interleaved), the groups in turn, ``passes`` times."""
    size = protocol.group
    groups = [[backend.prepare_model(s) for s in specs[i:i + size]] for i in range(0, len(specs), size)]
    out: list[list[Any]] = [[] for _ in specs]
    for _ in range(passes):
        done = [m for group in groups for m in backend.measure(group, protocol)]
        for mine, m in zip(out, done, strict=True):
            mine.append(m)
    return out


def measure_specs(target: Any, specs: list[Any], passes: int, seed: int) -> list[dict[str, Any]]:
    """Each spec end to end (:func:`timed_passes`, in a seeded shuffled order), in ``specs``' order."""
    from perfstudent.measurement import Measurement

    order = np.random.default_rng(seed).permutation(len(specs)).tolist()
    backend = target.make_backend()
    try:
        timed = timed_passes(backend, [specs[i] for i in order], target.timing(), passes)
    finally:
        backend.close()
    by_spec: dict[int, dict[str, Any]] = {}
    for i, ms in zip(order, timed, strict=True):
        joined = Measurement(tuple(s for m in ms for s in m.samples_ms), ms[0].estimator, ms[0].inner)
        by_spec[i] = {"widths": dict(specs[i].widths), "measured_ms": joined.ms,
                      "passes_ms": [m.ms for m in ms], "spread": joined.spread,
                      "noisy": any(m.noisy for m in ms)}
    return [by_spec[i] for i in range(len(specs))]


def measure_step(target: Any, args: argparse.Namespace, name: str,
                 plans: dict[str, Any]) -> dict[str, Any]:
    found = saved(args.out_dir, f"measured_{name}", args.force)
    if found is not None and found.get("plans_date") == plans["date"]:
        return found
    from perfstudent.students import full_spec

    base = full_spec(plans["family"], plans["input_size"], plans["in_channels"], plans["num_classes"])
    keys = list(dict.fromkeys(widths_key(r["widths"]) for r in plans["plans"] if "widths" in r))
    specs = [base.with_widths(json.loads(k)) for k in keys]
    before, start = os.getloadavg(), time.perf_counter()
    students = measure_specs(target, specs, args.passes, args.seed)
    return save(args.out_dir, f"measured_{name}", {
        "plans_date": plans["date"], "protocol": target.protocol,
        "timing": target.timing().to_dict(), "passes": args.passes, "seed": args.seed,
        "loadavg_before": before, "loadavg_after": os.getloadavg(),
        "measure_wall_s": time.perf_counter() - start, "students": students})


# -- results ------------------------------------------------------------------------------
def saved(out_dir: Path, name: str, force: bool) -> dict[str, Any] | None:
    path = out_dir / f"{name}.json"
    return None if force or not path.exists() else json.loads(path.read_text())


def save(out_dir: Path, name: str, data: dict[str, Any]) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = conditions() | data | {"loadavg_end": os.getloadavg()}
    (out_dir / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    return data


def joined_rows(plans: dict[str, Any], measured: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The feasible plans, each with its measured ms (None before the measure step)."""
    ms = {widths_key(s["widths"]): s["measured_ms"] for s in (measured or {}).get("students", [])}
    return [r | {"measured_ms": ms.get(widths_key(r["widths"]))} for r in plans["plans"] if "widths" in r]


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def family_table(plans: dict[str, Any], rows: list[dict[str, Any]],
                 measured: dict[str, Any] | None) -> list[str]:
    t = plans["teacher"]
    acc = _num(None if t["best_test_acc"] is None else 100 * t["best_test_acc"], ".1f")
    lines = [f"## {plans['family']} @{plans['input_size']}px", "",
             f"LUT {plans['fingerprint']}; full network {plans['full_ms']:.3f} ms, smallest "
             f"student (1 channel a slot) {plans['smallest_ms']:.3f} ms (predicted). Teacher: {t['data']}, "
             f"{t['epochs_done']} epoch(s) on {t['train_limit'] or 'all'} images in "
             f"{t['train_seconds']:.0f} s, test accuracy {acc}%. Saliency: "
             f"{plans['saliency']['samples']} samples. Enhance: tolerance {plans['tolerance']}, "
             f"by {plans['enhance_by']}.", ""]
    if measured is not None:
        lines += [f"Measured: {measured['protocol']} protocol, {measured['passes']} passes, load "
                  f"average {measured['loadavg_before'][0]:.2f} before, "
                  f"{measured['loadavg_after'][0]:.2f} after.", ""]
    lines += ["| budget ms | strategy | predicted ms | measured ms | saliency kept | channels kept |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {r['budget_ms']:.3f} | {r['strategy']} | {r['predicted_ms']:.3f} | "
              f"{_num(r['measured_ms'], '.3f')} | {r['saliency_kept']:.4f} | {r['channels_kept']:.4f} |"
              for r in rows]
    missing = [f"{r['strategy']} at {r['budget_ms']:.3f} ms" for r in plans["plans"] if "widths" not in r]
    if missing:
        lines += ["", "Infeasible: " + ", ".join(missing) + "."]
    return [*lines, "", *gains_table(rows), ""]


def gains_table(rows: list[dict[str, Any]]) -> list[str]:
    """What enhance added to each source plan at the same budget."""
    lines = ["| budget ms | source | + channels kept | + saliency kept | measured ms source -> enhanced |",
             "|---|---|---|---|---|"]
    by = {(r["strategy"], r["budget_ms"]): r for r in rows}
    for r in rows:
        src = by.get((r["strategy"].removesuffix("+enhance"), r["budget_ms"]))
        if not r["strategy"].endswith("+enhance") or src is None:
            continue
        change = "-" if None in (src["measured_ms"], r["measured_ms"]) else (
            f"{src['measured_ms']:.3f} -> {r['measured_ms']:.3f} "
            f"({r['measured_ms'] / src['measured_ms'] - 1:+.1%})")
        lines.append(f"| {r['budget_ms']:.3f} | {src['strategy']} | "
                     f"{r['channels_kept'] - src['channels_kept']:+.4f} | "
                     f"{r['saliency_kept'] - src['saliency_kept']:+.4f} | {change} |")
    return lines


def plot(rows: list[dict[str, Any]], title: str, out: Path) -> None:
    """Saliency kept and channels kept against measured ms (predicted if not measured yet)."""
    from matplotlib.figure import Figure

    from perfstudent.fronts.plot import style_of

    measured = all(r["measured_ms"] is not None for r in rows)
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    axes = fig.subplots(1, 2)
    sources = list(dict.fromkeys(r["strategy"].removesuffix("+enhance") for r in rows))
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = sorted((r for r in rows if r["strategy"] == strategy), key=lambda r: r["budget_ms"])
        source = strategy.removesuffix("+enhance")
        colour, marker = style_of(source, sources.index(source))
        enhanced = source != strategy  # dashed, hollow markers, the colour of its source
        x = [r["measured_ms"] if measured else r["predicted_ms"] for r in mine]
        for ax, key in zip(axes, ("saliency_kept", "channels_kept"), strict=True):
            ax.plot(x, [r[key] for r in mine], "--" if enhanced else "-", color=colour, marker=marker,
                    markerfacecolor="none" if enhanced else colour, label=strategy)
    for ax, what in zip(axes, ("saliency kept", "channels kept"), strict=True):
        ax.set_xlabel("measured ms" if measured else "PREDICTED ms (not measured yet)")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)


def table(out_dir: Path) -> str:
    """``fronts_free.md`` and a figure per family from the results present."""
    lines = ["# Training-free fronts", "",
             "Saliency kept (share of the teacher's Fisher saliency) and channels kept (share of "
             "the prunable channels) against latency; `+enhance` is `perfstudent enhance` applied "
             "to the plan of the same budget. From `benchmarks/fronts_free.py`.", ""]
    for path in sorted(out_dir.glob("plans_*.json")):
        plans = json.loads(path.read_text())
        name = path.stem.removeprefix("plans_")
        measured = saved(out_dir, f"measured_{name}", False)
        if measured is not None and measured.get("plans_date") != plans["date"]:
            measured = None  # of older plans
        rows = joined_rows(plans, measured)
        lines += family_table(plans, rows, measured)
        plot(rows, f"{plans['family']} @{plans['input_size']}px", out_dir / f"{name}.png")
        lines += [f"![{name}]({name}.png)", ""]
    text = "\n".join(lines)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fronts_free.md").write_text(text)
    return text


# -- data ---------------------------------------------------------------------------------
def make_imagefolder(out: Path, train_per_class: int, val_per_class: int) -> None:
    """Fashion-MNIST's first images of each class as ``out/{train,val}/<class>/*.png`` (the
    train split's, the test split's): what ``--data imagefolder:OUT --input-size N`` reads."""
    from PIL import Image

    from perfstudent.distill.data import load_dataset

    bundle = load_dataset("fashion-mnist")
    for split, data, count in (("train", bundle.train, train_per_class), ("val", bundle.test, val_per_class)):
        for label in range(bundle.num_classes):
            folder = out / split / f"{label:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in (data.labels == label).nonzero().flatten()[:count].tolist():
                Image.fromarray(data.images[i, 0].numpy()).save(folder / f"{i:05d}.png")
    print(f"wrote {out}/train and {out}/val ({train_per_class} and {val_per_class} per class)")


# -- command line -------------------------------------------------------------------------
def parse(argv: list[str] | None) -> argparse.Namespace:
    from perfstudent.plan.strategies import strategy_names

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family")
    p.add_argument("--input-size", type=int)
    p.add_argument("--teacher", type=Path, help="run directory of perfstudent train")
    p.add_argument("--saliency", type=Path, help="JSON of perfstudent saliency on the teacher")
    p.add_argument("--lut", type=Path, help="LUT with the target's rows of this family and size")
    p.add_argument("--device", default="local")
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--protocol", default="default", help="timing protocol of the measure step")
    p.add_argument("--budgets", type=int, default=6)
    p.add_argument("--low", type=float, default=1.15, help="lowest budget / smallest student")
    p.add_argument("--high", type=float, default=0.9, help="highest budget / full network")
    p.add_argument("--margin", default="0", help="plan margin: a duration or auto (plan --margin)")
    p.add_argument("--strategies", default=",".join(strategy_names()))
    p.add_argument("--enhance", default=",".join(ENHANCED), help="strategies whose plans enhance widens")
    p.add_argument("--tolerance", default=BUDGET, help="enhance tolerance: budget, 1%%, 20us, ...")
    p.add_argument("--enhance-by", choices=["channels", "saliency"], default="channels",
                   help="what enhance maximises (enhance's default: channels)")
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="order of the students when measured")
    p.add_argument("--steps", default="plan,measure")
    p.add_argument("--out-dir", type=Path, default=OUT)
    p.add_argument("--force", action="store_true", help="redo steps whose results exist")
    p.add_argument("--table", action="store_true", help="only write fronts_free.md and the figures")
    p.add_argument("--make-imagefolder", type=Path, metavar="DIR")
    p.add_argument("--per-class", default="200,50", help="--make-imagefolder: train,val images")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from perfstudent.durations import parse_duration_ms

    args = parse(argv)
    if args.make_imagefolder is not None:
        train, val = (int(n) for n in args.per_class.split(","))
        make_imagefolder(args.make_imagefolder, train, val)
        return
    if args.table:
        print(table(args.out_dir))
        return
    if None in (args.family, args.input_size, args.teacher, args.saliency, args.lut):
        raise SystemExit("give --family, --input-size, --teacher, --saliency and --lut")
    args.strategies, args.enhance = args.strategies.split(","), args.enhance.split(",")
    args.margin_ms = None if args.margin == "auto" else parse_duration_ms(args.margin, "margin",
                                                                          allow_zero=True)
    target, name = target_of(args), f"{args.family}_{args.input_size}"
    steps = set(args.steps.split(","))
    plans = plan_step(target, args, name) if "plan" in steps or "measure" in steps else None
    if plans is not None:
        print(f"plans: {len(plans['plans'])} at {len(plans['budgets_ms'])} budgets", flush=True)
    if "measure" in steps and plans is not None:
        measured = measure_step(target, args, name, plans)
        print(f"measured {len(measured['students'])} students in {measured['measure_wall_s']:.0f} s, "
              f"load {measured['loadavg_before'][0]:.2f} -> {measured['loadavg_after'][0]:.2f}")
    print(table(args.out_dir))


if __name__ == "__main__":
    main()
