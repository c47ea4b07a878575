"""The experiment as a step graph, and ``run_experiment``.

Layout of an experiment directory::

    EXP/config.json          the validated configuration (defaults filled in)
    EXP/state.json           step states (see :mod:`.engine`)
    EXP/teacher/             the teacher run (unless [train] teacher reuses one)
    EXP/saliency.json        Fisher saliency of the teacher
    EXP/budgets.json         the budgets in ms (fractions resolved on the LUT)
    EXP/plans/S-B.json       one plan per strategy S and budget label B
    EXP/runs/S-B-sN/         one distilled student per plan and seed N
    EXP/front/front.png|svg|csv, front-summary.csv, front-staircase.png|svg
    EXP/report.md            the table, the comparison at equal latency, the figures
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfstudent.distill.runs import load_run
from perfstudent.errors import InputError
from perfstudent.experiment import actions as act
from perfstudent.experiment import planning as pl
from perfstudent.experiment import report
from perfstudent.experiment.budgets import budget_label
from perfstudent.experiment.config import ExperimentConfig
from perfstudent.experiment.engine import Step, StepOutcome, check_redo, run_steps
from perfstudent.guards import check_output_dir
from perfstudent.io import read_json, write_json
from perfstudent.plan.strategies import get_strategy
from perfstudent.resources import check_threads


@dataclass(frozen=True)
class Layout:
    out: Path
    teacher: Path

    @property
    def saliency(self) -> Path:
        return self.out / "saliency.json"

    @property
    def budgets(self) -> Path:
        return self.out / "budgets.json"

    def plan(self, strategy: str, label: str) -> Path:
        return self.out / "plans" / f"{strategy}-{label}.json"

    def run(self, strategy: str, label: str, seed: int) -> Path:
        return self.out / "runs" / f"{strategy}-{label}-s{seed}"

    @property
    def front(self) -> Path:
        return self.out / "front" / "front.png"

    @property
    def report(self) -> Path:
        return self.out / "report.md"


def _rm(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _head_steps(ctx: act.Context, lay: Layout) -> list[Step]:
    cfg = ctx.config
    device = dict(cfg["device"], lut=str(ctx.lut))
    dims = [ctx.family, ctx.input_size, ctx.in_channels, ctx.num_classes]
    steps = [Step("profile", {"device": device, "profile": cfg["profile"], "dims": dims},
                  lambda: act.profile(ctx), lambda: act.check_profile(ctx),
                  reuse_valid_output=True)]
    t = cfg["train"]
    if t["teacher"] is None:
        steps.append(Step("teacher", {"train": _settings(t), "data": cfg["data"], "dims": dims},
                          lambda: act.train(ctx, lay.teacher, kind="train", seed=t["seed"]),
                          lambda: act.check_run(lay.teacher, t["epochs"]),
                          clean=lambda resumable: act.clean_run(lay.teacher, resumable)))
    else:
        steps.append(Step("teacher", {"reuse": str(lay.teacher)}, lambda: _reuse(lay.teacher),
                          lambda: act.check_run(lay.teacher), reuse_valid_output=True))
    steps += [
        Step("saliency", {"saliency": cfg["saliency"], "data": cfg["data"]},
             lambda: pl.saliency(ctx, lay.teacher, lay.saliency),
             lambda: pl.check_saliency(ctx, lay.saliency), deps=("teacher",),
             clean=lambda _r: _rm(lay.saliency)),
        Step("budgets", {"budgets": cfg["experiment"]["budgets"]},
             lambda: pl.budgets(ctx, lay.budgets),
             lambda: pl.check_budgets(ctx, lay.budgets, _labels(cfg)), deps=("profile",),
             clean=lambda _r: _rm(lay.budgets)),
    ]
    return steps


#: Settings that change how fast a step runs, not what it produces: not part of digests.
_SPEED_ONLY = ("threads",)


def _settings(section: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k not in _SPEED_ONLY}


def _reuse(teacher: Path) -> None:
    problem = act.check_run(teacher)
    if problem:
        from perfstudent.errors import InputError

        raise InputError(f"[train] teacher: {problem}")


def _labels(cfg: ExperimentConfig) -> list[str]:
    return [budget_label(b) for b in cfg["experiment"]["budgets"]]


def _student_steps(ctx: act.Context, lay: Layout) -> list[Step]:
    cfg = ctx.config
    exp, dist = cfg["experiment"], cfg["distill"]
    steps = []
    for label in _labels(cfg):
        for s in exp["strategies"]:
            path = lay.plan(s, label)
            steps.append(Step(f"plan/{s}/{label}", {"margin_ms": dist["margin_ms"]},
                              _bind(pl.plan, ctx, s, label, lay.budgets, lay.teacher,
                                    lay.saliency, path),
                              _bind(pl.check_plan, path, s),
                              deps=("budgets", "saliency", "teacher"),
                              clean=_bind_clean(_rm_unless_resumable, path)))
    runs = [(s, label, seed) for seed in exp["seeds"] for label in _labels(cfg)
            for s in exp["strategies"]]
    for s, label, seed in runs:
        run, plan = lay.run(s, label, seed), f"plan/{s}/{label}"
        steps.append(Step(f"distill/{s}/{label}/s{seed}",
                          {"distill": _settings(dist), "data": cfg["data"], "seed": seed},
                          _bind(act.train, ctx, run, kind="distill", seed=seed,
                                plan=lay.plan(s, label), teacher=lay.teacher),
                          _bind(act.check_run, run, dist["epochs"]),
                          deps=(plan, "teacher"), clean=_bind_clean(act.clean_run, run)))
    return steps


def _bind(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return lambda: fn(*args, **kwargs)


def _bind_clean(fn: Callable[[Path, bool], None], path: Path) -> Callable[[bool], None]:
    return lambda resumable: fn(path, resumable)


def _rm_unless_resumable(path: Path, _resumable: bool) -> None:
    _rm(path)


def build_steps(ctx: act.Context, lay: Layout) -> list[Step]:
    """Every step of the experiment, in execution order."""

    cfg = ctx.config
    device = dict(cfg["device"], lut=str(ctx.lut))
    steps = _head_steps(ctx, lay) + _student_steps(ctx, lay)
    runs = [lay.teacher] + [lay.run(s, b, n) for n in cfg["experiment"]["seeds"]
                            for b in _labels(cfg) for s in cfg["experiment"]["strategies"]]
    # One measurement of every run after all training, interleaved: on a shared machine a
    # slow phase can last minutes, and runs compared at equal latency must see the same one.
    trained = tuple(s.id for s in steps if s.id == "teacher" or s.id.startswith("distill/"))
    steps.append(Step("measure", {"device": device}, lambda: act.measure(ctx, runs),
                      lambda: act.check_measured(ctx, runs), deps=trained))
    steps.append(Step("front", {"front": cfg["front"]},
                      lambda: report.front(ctx, runs, lay.front),
                      lambda: report.check_front(lay.front), deps=("measure",)))
    steps.append(Step("report", {}, lambda: report.write_report(ctx, lay, runs),
                      lambda: None if lay.report.is_file() else f"{lay.report} missing",
                      deps=("front",)))
    return steps


def run_experiment(config: ExperimentConfig, out: Path, *, progress: bool = True,
                   log: Any = None, redo: Sequence[str] = ()) -> list[StepOutcome]:
    """Run (or resume) the experiment of ``config`` in directory ``out``.

    Everything is checked before anything is written (:func:`preflight`): a
    config that would fail leaves a finished experiment byte for byte as it was.
    """
    check_output_dir(out, "experiment directory")
    size, channels, classes = act.dataset_dims(config)
    ctx = act.Context(config, out, config.path("device", "lut"), size, channels, classes, progress)
    teacher = config.path("train", "teacher") or out / "teacher"
    steps = build_steps(ctx, Layout(out, teacher))
    check_redo([s.id for s in steps], redo)
    preflight(ctx, teacher)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create experiment directory {out}: {exc.strerror or exc}") from None
    resolved = out / "config.json"
    if not resolved.is_file() or read_json(resolved, "experiment config") != config.to_dict():
        write_json(resolved, config.to_dict())  # only when it changed: a re-run touches nothing
    return run_steps(steps, out / "state.json", progress=progress, log=log, redo=redo)


def preflight(ctx: act.Context, teacher: Path) -> None:
    """Check what can be checked before the first write: the device, backend and family exist,
    the training threads fit this machine, every strategy can run here (its optional extra is
    installed), a reused teacher is a run of the family fit for the data, and the budgets fit
    the LUT when it already holds the family (a fresh LUT is checked by the budgets step, after profiling)."""
    ctx.target().make_backend().close()
    ctx.full_spec()
    for section in ("train", "distill"):  # else refused only when that step starts, maybe hours in
        if ctx.config[section]["threads"] is not None:
            check_threads(ctx.config[section]["threads"], f"[{section}] threads")
    for strategy in ctx.config["experiment"]["strategies"]:
        get_strategy(strategy).check_available()  # e.g. torch-pruning without its extra
    if ctx.config["train"]["teacher"] is not None:
        spec = load_run(teacher).spec
        dims = (spec.input_size, spec.in_channels, spec.num_classes)
        if spec.family != ctx.family or dims != (ctx.input_size, ctx.in_channels, ctx.num_classes):
            raise InputError(f"[train] teacher {teacher} is a {spec.family} for {dims[0]}px, "
                             f"{dims[1]} channels, {dims[2]} classes; the experiment needs a "
                             f"{ctx.family} for {ctx.input_size}px, {ctx.in_channels} channels, "
                             f"{ctx.num_classes} classes")
    if act.check_profile(ctx) is None:
        pl.resolved_budgets(ctx, act.view(ctx))
