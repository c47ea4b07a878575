"""Experiment steps between the teacher and the students: saliency, budgets, plans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfstudent.distill.runs import load_run
from perfstudent.errors import InputError
from perfstudent.experiment.actions import Context, view
from perfstudent.experiment.budgets import Budget, resolve_budgets
from perfstudent.io import read_json, write_json
from perfstudent.pipeline import plan as run_plan
from perfstudent.pipeline import saliency as run_saliency
from perfstudent.plan.problem import build_problem
from perfstudent.plan.saliency import Saliency


def saliency(ctx: Context, teacher: Path, out: Path) -> None:
    s = ctx.config["saliency"]
    d = ctx.data_args()
    result = run_saliency(teacher, d["data"], batches=s["batches"], batch_size=s["batch_size"],
                          data_dir=d["data_dir"], progress=ctx.progress)
    result.save(out)


def check_saliency(ctx: Context, path: Path) -> str | None:
    if not path.is_file():
        return f"{path} does not exist"
    try:
        loaded = Saliency.load(path)
    except InputError as exc:
        return str(exc)
    return None if loaded.family == ctx.family else f"{path} is for {loaded.family}"


def budgets(ctx: Context, out: Path) -> None:
    """Resolve the configured budgets to ms against the full network's prediction; write them."""
    write_json(out, resolved_budgets(ctx, view(ctx)))


def resolved_budgets(ctx: Context, latency: Any) -> dict[str, Any]:
    """The budgets in ms on ``latency`` (a LUT view); an InputError for one below the smallest."""
    full = ctx.full_spec()
    full_ms = float(latency.predict(full).total_ms)
    ones = {slot: [1.0] * width for slot, width in full.widths.items()}
    smallest_ms = build_problem(latency, full, ones, full_ms).smallest_ms()  # the planner's own floor
    resolved = resolve_budgets(ctx.config["experiment"]["budgets"], full_ms)
    for b in resolved:
        if b.ms < smallest_ms:
            raise InputError(
                f"[experiment] budgets: {b.given!r} = {b.ms:.4g} ms is below the smallest "
                f"{full.family} student at {full.input_size}px ({smallest_ms:.4g} ms predicted = "
                f"{smallest_ms / full_ms:.2f} of the full network's {full_ms:.4g} ms); "
                f"use at least {smallest_ms / full_ms:.2f} or {smallest_ms:.3g}ms")
    return {"full_predicted_ms": full_ms, "smallest_predicted_ms": smallest_ms,
            "budgets": [{"given": b.given, "label": b.label, "ms": b.ms} for b in resolved]}


def load_budgets(path: Path) -> dict[str, Budget]:
    data = read_json(path, "budgets")
    return {b["label"]: Budget(b["given"], b["label"], float(b["ms"])) for b in data["budgets"]}


def check_budgets(ctx: Context, path: Path, labels: list[str]) -> str | None:
    if not path.is_file():
        return f"{path} does not exist"
    try:
        known = load_budgets(path)
    except (InputError, KeyError, TypeError, ValueError) as exc:
        return f"{path} is malformed: {exc}"
    return None if list(known) == labels else f"{path} has budgets {list(known)}, want {labels}"


def plan(ctx: Context, strategy: str, budget_label: str, budgets_path: Path, teacher: Path,
         saliency_path: Path | None, out: Path) -> None:
    """The plan use case on the teacher's spec for one strategy and budget; saved as JSON."""

    budget = load_budgets(budgets_path)[budget_label]
    scores = Saliency.load(saliency_path) if saliency_path is not None else None
    result = run_plan(ctx.target(), ctx.lut, strategy, budget.ms, load_run(teacher).spec, scores,
                      ctx.config["distill"]["margin_ms"],  # None: auto, as `perfstudent plan`
                      teacher)  # read only by strategies that prune it (torch-pruning)
    result.save(out)


def check_plan(path: Path, strategy: str) -> str | None:
    """Complete when the plan loads, has the strategy, and its prediction is within budget."""
    from perfstudent.plan.planner import Plan

    if not path.is_file():
        return f"{path} does not exist"
    try:
        plan = Plan.load(path)
    except InputError as exc:
        return str(exc)
    if plan.strategy != strategy:
        return f"{path} is a {plan.strategy} plan, want {strategy}"
    if plan.predicted_ms > plan.budget_ms + 1e-9:
        return f"{path} predicts {plan.predicted_ms} ms over its budget {plan.budget_ms} ms"
    return None
