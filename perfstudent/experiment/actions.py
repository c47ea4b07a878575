"""What each experiment step does, and how its output is checked.

Thin adapters over the other areas' libraries (profiler sweep, trainer,
saliency, planner, fronts), so the step graph in :mod:`.steps` stays readable.
Checks return ``None`` when the output is complete, else a short reason.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfstudent.distill.data import load_dataset
from perfstudent.distill.runs import load_run
from perfstudent.distill.trainer import TrainConfig, run_training
from perfstudent.errors import InputError
from perfstudent.experiment.config import ExperimentConfig
from perfstudent.fronts.collect import latency_key, measure_together
from perfstudent.lut import LatencyTable, spec_context
from perfstudent.pipeline import Target
from perfstudent.pipeline import profile as run_profile
from perfstudent.profiler.sweep import SweepConfig
from perfstudent.students import full_spec

if TYPE_CHECKING:
    from perfstudent.students import WidthSpec


@dataclass(frozen=True)
class Context:
    """A validated config plus the resolved places and shapes every step needs."""

    config: ExperimentConfig
    out: Path
    lut: Path | None
    input_size: int
    in_channels: int
    num_classes: int
    progress: bool = True

    @property
    def device(self) -> tuple[str, str, int]:
        d = self.config["device"]
        return d["name"], d["backend"], d["threads"]

    @property
    def family(self) -> str:
        return str(self.config["model"]["family"])

    def full_spec(self) -> WidthSpec:
        return full_spec(self.family, self.input_size, self.in_channels, self.num_classes)

    def data_args(self) -> dict[str, Any]:
        d = self.config["data"]
        return {"data": d["dataset"], "data_dir": self.config.path("data", "data_dir"),
                "train_limit": d["train_limit"], "test_limit": d["test_limit"]}

    def protocol(self) -> Any:
        return self.target().timing()

    def target(self) -> Target:
        d = self.config["device"]
        return Target(d["name"], d["backend"], d["threads"], {}, d["protocol"])


def dataset_dims(config: ExperimentConfig) -> tuple[int, int, int]:
    """(input_size, in_channels, num_classes) of the configured dataset."""

    d = config["data"]
    bundle = load_dataset(d["dataset"], config.path("data", "data_dir"), train_limit=1, test_limit=1)
    return bundle.input_size, bundle.in_channels, bundle.num_classes


# -- profile ---------------------------------------------------------------------------
def profile(ctx: Context) -> None:
    p = ctx.config["profile"]
    sweep_config = SweepConfig(ctx.family, ctx.input_size, ctx.in_channels, ctx.num_classes,
                               exhaustive=p["exhaustive"], tolerance=p["tolerance"],
                               coarse_points=p["coarse_points"])
    run_profile(ctx.target(), ctx.lut, sweep_config, progress=ctx.progress)


def view(ctx: Context) -> Any:
    """The LUT view of the experiment's target (InputError if none)."""

    with LatencyTable.open(ctx.lut, create=False) as table:
        return ctx.target().view(table)


def check_profile(ctx: Context) -> str | None:
    """Complete when a sweep of this family's context is recorded and the full net predicts."""

    spec = ctx.full_spec()
    try:
        table = LatencyTable.open(ctx.lut, create=False)
    except InputError as exc:  # no LUT yet: nothing profiled (and nothing created by asking)
        return str(exc)
    try:
        v = ctx.target().view(table)
        wanted = spec_context(spec)
        done = [s for s in table.sweeps(v.fingerprint)
                if {k: s[k] for k in wanted if k in s} == wanted]
        if not done:
            return f"no completed sweep of {ctx.family} at {ctx.input_size}px in {table.path}"
        v.predict(spec)
        v.predict(spec.with_widths(dict.fromkeys(spec.widths, 1)))
    except InputError as exc:
        return str(exc)
    finally:
        table.close()
    return None


# -- runs (teacher and students) ------------------------------------------------------
def train(ctx: Context, out: Path, *, kind: str, seed: int, plan: Path | None = None,
          teacher: Path | None = None) -> None:
    """Train (kind ``train``) or distill (kind ``distill``) into ``out``, resuming if it can."""

    section = ctx.config["train" if kind == "train" else "distill"]
    extra: dict[str, Any] = {}
    if kind == "distill":
        extra = {"plan": plan, "teacher": teacher, "beta": section["beta"], "kd": section["kd"]}
    else:
        extra = {"family": ctx.family}
    config = TrainConfig(out=out, kind=kind, epochs=section["epochs"],
                         batch_size=section["batch_size"], lr=section["lr"], seed=seed,
                         threads=section["threads"],
                         resume=(out / "config.json").is_file(), progress=ctx.progress,
                         **ctx.data_args(), **extra)
    run_training(config)


def check_run(path: Path, epochs: int | None = None) -> str | None:
    """Complete when the run loads and has done ``epochs`` epochs (its own ``epochs`` if None)."""

    try:
        run = load_run(path)
    except InputError as exc:
        return str(exc)
    done, acc = run.summary.epochs_done, run.summary.final_test_acc
    wanted = epochs if epochs is not None else run.summary.epochs
    if done != wanted:
        return f"{path} has {done} of {wanted} epochs (unfinished)"
    if not isinstance(acc, (int, float)):
        return f"{path} has no final_test_acc"
    return None


def clean_run(path: Path, resumable: bool) -> None:
    """Keep a run directory to resume it (same settings), else remove it."""
    if path.exists() and not (resumable and (path / "config.json").is_file()):
        shutil.rmtree(path)


def measure(ctx: Context, run_paths: list[Path]) -> None:
    """Measure every run together, interleaved (:func:`measure_together`), after all training."""
    device, backend, threads = ctx.device
    measure_together(run_paths, device, backend, threads, protocol=ctx.protocol())


def check_measured(ctx: Context, run_paths: list[Path]) -> str | None:
    """Complete when every run holds a latency for the experiment's device."""
    key = latency_key(*ctx.device)
    for path in run_paths:
        try:
            run = load_run(path)
        except InputError as exc:
            return str(exc)
        if key not in run.summary.latency:
            return f"{path} has no latency {key}"
    return None
