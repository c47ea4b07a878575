"""One epoch of training (plain or distilled) and one evaluation pass, on one rank.

Distillation captures the student's and the teacher's stage outputs
(``Family.stage_paths()``) with forward hooks; the teacher runs in eval mode
under ``torch.no_grad()`` on the same augmented batch. With ``beta == 0`` and
no KD the teacher is not run at all (the no-distillation baseline costs what
plain training costs).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from perfstudent.distill.distributed import DistContext
from perfstudent.distill.hooks import FeatureCapture
from perfstudent.distill.job import Job
from perfstudent.distill.losses import distill_loss
from perfstudent.students import get_family


class StepRunner:
    """Runs epochs of ``model`` (wrapped in DDP on more than one rank) for a config and job."""

    def __init__(self, config: Any, job: Job, model: nn.Module, opt: torch.optim.Optimizer,
                 dist: DistContext) -> None:
        self.config, self.job, self.dist, self.opt = config, job, dist, opt
        self.bare_model = model
        self.model: nn.Module = model
        if dist.initialized:
            ids = [dist.device.index] if dist.device.type == "cuda" else None
            self.model = DistributedDataParallel(model, device_ids=ids)
        self.teacher = job.teacher.to(dist.device).eval() if job.teacher is not None else None
        self.use_at = self.teacher is not None and config.beta > 0
        self.use_teacher = self.teacher is not None and (self.use_at or config.kd)
        self.paths = get_family(job.spec.family).stage_paths()

    def train_epoch(self, epoch: int, bar: Any) -> tuple[float, float]:
        """Train one epoch; returns (mean loss, accuracy) over all ranks' samples."""
        cfg, dev = self.config, self.dist.device
        self.model.train()
        totals = torch.zeros(3, dtype=torch.float64)  # loss·n, correct, n
        with ExitStack() as stack:
            s_cap = stack.enter_context(FeatureCapture(self.bare_model, self.paths)) if self.use_at else None
            t_cap = (stack.enter_context(FeatureCapture(self.teacher, self.paths))
                     if self.use_at and self.teacher is not None else None)
            batches = self.job.data.batches("train", cfg.batch_size, seed=cfg.seed, epoch=epoch,
                                            rank=self.dist.rank, world_size=self.dist.world_size)
            for x, y in batches:
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                logits = self.model(x)
                t_logits = None
                if self.use_teacher and self.teacher is not None:
                    with torch.no_grad():
                        t_logits = self.teacher(x)
                loss = distill_loss(
                    logits, y, s_cap.outputs() if s_cap else (), t_cap.outputs() if t_cap else (),
                    t_logits, beta=cfg.beta if self.use_at else 0.0, kd=cfg.kd and self.use_teacher,
                    alpha=cfg.kd_alpha, temperature=cfg.kd_temperature)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                totals += _batch_totals(loss.detach(), logits.detach(), y)
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{totals[0] / totals[2]:.4f}",
                                acc=f"{totals[1] / totals[2]:.4f}", refresh=False)
        return _means(self.dist.all_reduce_sum(totals))

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Cross-entropy and accuracy on the whole test split (sharded across ranks)."""
        cfg, dev = self.config, self.dist.device
        self.bare_model.eval()
        totals = torch.zeros(3, dtype=torch.float64)
        for x, y in self.job.data.batches("test", cfg.batch_size, rank=self.dist.rank,
                                          world_size=self.dist.world_size):
            x, y = x.to(dev), y.to(dev)
            logits = self.bare_model(x)
            totals += _batch_totals(F.cross_entropy(logits, y), logits, y)
        return _means(self.dist.all_reduce_sum(totals))


def _batch_totals(loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    n = len(y)
    correct = (logits.argmax(1) == y).sum()
    return torch.tensor([float(loss) * n, float(correct), n], dtype=torch.float64)


def _means(totals: torch.Tensor) -> tuple[float, float]:
    n = max(float(totals[2]), 1.0)
    return float(totals[0]) / n, float(totals[1]) / n
