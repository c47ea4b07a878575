"""The training loop behind ``perfstudent train`` and ``perfstudent distill``.

SGD with momentum and weight decay; the learning rate of epoch ``e`` (0-based,
``E`` epochs) is ``lr·½(1+cos(π·e/E))`` (cosine) or ``lr·γ^k`` with ``k`` the
number of milestones ``≤ e`` (step; milestones at 50% and 75% of ``E``,
γ = 0.1). The loss is cross-entropy for ``train`` and
:func:`perfstudent.distill.losses.distill_loss` for ``distill``.

Resuming: ``last.pt`` holds the model, optimizer, schedule position, the
torch/numpy/python RNG states and the metric history; the data order and
augmentation of epoch ``e`` are functions of (seed, e, rank), so a resumed
run replays exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from perfstudent.distill import checkpoint as ckpt
from perfstudent.distill.distributed import DistContext, init_distributed
from perfstudent.distill.epoch import StepRunner
from perfstudent.distill.job import Job, prepare_job
from perfstudent.distill.runs import check_something_to_resume, prepare_run_dir, write_metrics
from perfstudent.distill.summary import write_summary
from perfstudent.errors import InputError
from perfstudent.io import write_json
from perfstudent.resources import check_threads
from perfstudent.students import build

SCHEDULES = ("cosine", "step")


@dataclass
class TrainConfig:
    """Every setting of a run; ``config.json`` is this, as a dict."""

    out: Path
    data: str = "digits"
    kind: str = "train"  # "train" or "distill"
    family: str | None = None
    spec: Path | None = None
    plan: Path | None = None
    teacher: Path | None = None
    data_dir: Path | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    input_size: int | None = None
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    seed: int = 0
    beta: float = 1000.0
    kd: bool = False
    kd_temperature: float = 4.0
    kd_alpha: float = 0.9
    device_type: str = "auto"
    threads: int | None = None
    resume: bool = False
    force: bool = False
    progress: bool = True
    stop_after: int | None = None  # stop (resumably) after this many epochs in total

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    def check(self) -> None:
        """InputError, naming the option, for any setting out of its range (before anything runs)."""
        if self.kind not in ("train", "distill"):
            raise InputError(f"kind must be train or distill, got {self.kind!r}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {self.schedule!r}; use {' or '.join(SCHEDULES)}")
        for name, high in (("epochs", MAX_EPOCHS), ("batch_size", None), ("stop_after", MAX_EPOCHS),
                           ("train_limit", None), ("test_limit", None)):
            value = getattr(self, name)
            if value is None and name not in ("epochs", "batch_size"):
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{_flag(name)} must be an integer >= 1, got {value!r}")
            if high is not None and value > high:
                raise InputError(f"{_flag(name)} {value} is more than {high}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) \
                or not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"--seed must be an integer in 0..{MAX_SEED} (2**63 - 1), got {self.seed!r}")
        _check_range("--lr", self.lr, low=0.0, low_open=True)
        _check_range("--momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        _check_range("--weight-decay", self.weight_decay, low=0.0)
        _check_range("--beta", self.beta, low=0.0)
        _check_range("kd_alpha", self.kd_alpha, low=0.0, high=1.0)
        _check_range("kd_temperature", self.kd_temperature, low=0.0, low_open=True)
        if self.threads is not None:
            check_threads(self.threads)


#: Above these, a setting is a typo, not a plan (and a seed must fit torch's int64).
MAX_EPOCHS = 100_000
MAX_SEED = 2**63 - 1


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_range(option: str, value: float, *, low: float, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> None:
    """InputError unless ``value`` is a finite number in the interval (``*_open``: bound excluded)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{option} must be a finite number, got {value!r}")
    below = value <= low if low_open else value < low
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        interval = (("(" if low_open else "[") + f"{low:g}, "
                    + (f"{high:g}" + (")" if high_open else "]") if high is not None else "inf)"))
        raise InputError(f"{option} must be in {interval}, got {value:g}")


def lr_at(config: TrainConfig, epoch: int) -> float:
    """Learning rate of 0-based ``epoch`` (see the module docstring)."""
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
    milestones = [round(config.epochs * f) for f in (0.5, 0.75)]
    return config.lr * 0.1 ** sum(epoch >= m for m in milestones)


def run_training(config: TrainConfig) -> Path:
    """Train (or distill) as ``config`` says, writing the run directory; returns its path."""
    config.check()
    if config.resume:
        check_something_to_resume(Path(config.out))  # before any data is loaded
    dist = init_distributed(config.device_type)
    try:
        if config.threads:
            torch.set_num_threads(config.threads)
        job = prepare_job(config)  # everything is validated before the run dir is touched
        resume_from = _claim(config, dist)
        _fit(config, job, dist, resume_from)
    finally:
        dist.close()
    return Path(config.out)


def _claim(config: TrainConfig, dist: DistContext) -> dict[str, Any] | None:
    out = Path(config.out)
    has_ckpt = False
    if dist.is_main:
        has_ckpt = prepare_run_dir(out, config.to_dict(), resume=config.resume, force=config.force)
    dist.barrier()
    if not dist.is_main:
        has_ckpt = config.resume and (out / "last.pt").is_file()
    return ckpt.load_checkpoint(out / "last.pt", "resume checkpoint") if has_ckpt else None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _fit(config: TrainConfig, job: Job, dist: DistContext, state: dict[str, Any] | None) -> None:
    _seed_everything(config.seed)
    model = build(job.spec).to(dist.device)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    history: list[dict[str, float]] = []
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        ckpt.set_rng_state(state["rng"])
        history = [dict(row) for row in state["history"]]
    start = len(history)
    runner = StepRunner(config, job, model, opt, dist)
    stop = min(config.epochs, config.stop_after or config.epochs)
    steps = job.data.num_batches("train", config.batch_size, dist.world_size)
    bar = tqdm(total=max(0, stop - start) * steps, file=sys.stderr, unit="batch", dynamic_ncols=True,
               disable=not (config.progress and dist.is_main), desc=f"{config.kind} {job.spec.family}")
    try:
        for epoch in range(start, stop):
            lr = lr_at(config, epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            tic = time.perf_counter()
            train_loss, train_acc = runner.train_epoch(epoch, bar)
            test_loss, test_acc = runner.evaluate()
            history.append({"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
                            "test_loss": test_loss, "test_acc": test_acc, "lr": lr,
                            "seconds": time.perf_counter() - tic})
            bar.set_postfix(epoch=epoch + 1, test_acc=f"{test_acc:.4f}")
            if dist.is_main:
                _save_epoch(config, job, runner.bare_model, opt, history)
            dist.barrier()
    finally:
        bar.close()
    if dist.is_main and start >= stop:
        write_summary(config, job, history)  # nothing left to do: refresh the summary only


def _save_epoch(config: TrainConfig, job: Job, model: nn.Module, opt: torch.optim.Optimizer,
                history: list[dict[str, float]]) -> None:
    """best.pt (if improved), then last.pt, metrics.csv and summary.json — each atomic."""
    out = Path(config.out)
    epoch = len(history)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    best = max(history, key=lambda r: r["test_acc"])
    if int(best["epoch"]) == epoch:
        ckpt.save_checkpoint(out / "best.pt", {"epoch": epoch, "model": state, "test_acc": best["test_acc"]})
    ckpt.save_checkpoint(out / "last.pt", {
        "epoch": epoch, "model": state, "optimizer": opt.state_dict(),
        "schedule": {"kind": config.schedule, "next_epoch": epoch, "lr": history[-1]["lr"]},
        "data_order": {"seed": config.seed, "next_epoch": epoch},
        "rng": ckpt.rng_state(), "history": history,
    })
    write_metrics(out, history)
    if job.plan is not None and not (out / "plan.json").is_file():
        write_json(out / "plan.json", job.plan)
    write_summary(config, job, history)
