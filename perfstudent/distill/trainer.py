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
from perfstudent.distill.runs import prepare_run_dir, write_metrics
from perfstudent.distill.summary import write_summary
from perfstudent.errors import InputError
from perfstudent.io import write_json
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
        if self.kind not in ("train", "distill"):
            raise InputError(f"kind must be train or distill, got {self.kind!r}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {self.schedule!r}; use {' or '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1")
        if self.lr <= 0 or self.beta < 0 or not 0 <= self.kd_alpha <= 1 or self.kd_temperature <= 0:
            raise InputError("need lr > 0, beta >= 0, 0 <= kd_alpha <= 1, kd_temperature > 0")


def lr_at(config: TrainConfig, epoch: int) -> float:
    """Learning rate of 0-based ``epoch`` (see the module docstring)."""
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
    milestones = [round(config.epochs * f) for f in (0.5, 0.75)]
    return config.lr * 0.1 ** sum(epoch >= m for m in milestones)


def run_training(config: TrainConfig) -> Path:
    """Train (or distill) as ``config`` says, writing the run directory; returns its path."""
    config.check()
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
