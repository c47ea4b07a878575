"""``perfstudent train`` and ``perfstudent distill``: thin wrappers over :func:`run_training`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from perfstudent.cli._root import cli
from perfstudent.errors import InputError

_PATH = click.Path(path_type=Path)


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by train and distill (applied bottom-up, so listed in reverse)."""
    options = [
        click.option("--data", default="digits", show_default=True,
                     help="digits | fashion-mnist | cifar10:PATH | cifar100:PATH | imagefolder:PATH"),
        click.option("--data-dir", type=_PATH, default=None, help="Where fashion-mnist's IDX files are."),
        click.option("--train-limit", type=click.IntRange(min=1), default=None,
                     help="Train on a fixed random subset of this many images."),
        click.option("--test-limit", type=click.IntRange(min=1), default=None,
                     help="Evaluate on a fixed random subset of this many images."),
        click.option("--input-size", type=click.IntRange(min=8), default=None,
                     help="imagefolder only: crop size in pixels (default 32)."),
        click.option("--epochs", type=int, default=30, show_default=True, help="1..100000."),
        click.option("--batch-size", type=int, default=128, show_default=True,
                     help="Images per step; one larger than the training set takes the whole set."),
        click.option("--lr", type=float, default=0.1, show_default=True, help="Learning rate, > 0."),
        click.option("--momentum", type=float, default=0.9, show_default=True, help="In [0, 1)."),
        click.option("--weight-decay", type=float, default=5e-4, show_default=True, help=">= 0."),
        click.option("--schedule", type=click.Choice(["cosine", "step"]), default="cosine",
                     show_default=True),
        click.option("--seed", type=int, default=0, show_default=True, help="0..2**63-1."),
        click.option("--device-type", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                     show_default=True),
        click.option("--threads", type=int, default=None,
                     help="torch CPU threads (at most this machine's CPUs)."),
        click.option("--out", type=_PATH, required=True, help="Run directory to write."),
        click.option("--resume", is_flag=True,
                     help="Continue the run in --out from its last epoch (it must exist)."),
        click.option("--force", is_flag=True, help="Overwrite perfstudent's files in a non-empty --out."),
        click.option("--stop-after", type=int, default=None,
                     help="Stop (resumably) once this many epochs are done."),
        click.option("--progress/--no-progress", default=True, help="Show a progress bar on stderr."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _run(**kwargs: Any) -> None:
    from perfstudent.distill.runs import load_run
    from perfstudent.distill.trainer import TrainConfig, run_training

    out = run_training(TrainConfig(**kwargs))
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun only rank 0 reports
    if out.is_dir() and (out / "summary.json").is_file():
        s = load_run(out).summary
        if s.epochs_done and s.final_test_acc is not None and s.best_test_acc is not None:
            click.echo(f"{out}: {s.epochs_done}/{s.epochs} epochs, test acc {s.final_test_acc:.4f} "
                       f"(best {s.best_test_acc:.4f} at epoch {s.best_epoch})")


@cli.command()
@click.option("--family", "--arch", "family", default=None,
              help="Family to train at full width (e.g. resnet20, wrn-16-2).")
@click.option("--spec", type=_PATH, default=None, help="WidthSpec (or Plan) JSON of the network to train.")
@_common
def train(family: str | None, spec: Path | None, **kwargs: Any) -> None:
    """Train a network from scratch (a teacher or a baseline) into a run directory.

    SGD (momentum 0.9, weight decay 5e-4, lr 0.1, batch 128, cosine schedule by
    default), evaluation every epoch, checkpoints each epoch; --resume continues
    a killed run with the same result. Runs under torchrun with DDP as is.

    \b
    Example:
      perfstudent train --family resnet20 --data fashion-mnist --epochs 30 --out runs/teacher
      perfstudent train --family resnet20 --data fashion-mnist --epochs 30 --out runs/teacher --resume
      torchrun --nproc_per_node 2 -m perfstudent train --family resnet20 --data digits --out runs/t
    """
    if (family is None) == (spec is None):
        raise InputError("give exactly one of --family or --spec")
    _run(kind="train", family=family, spec=spec, **kwargs)


@cli.command()
@click.option("--plan", type=_PATH, default=None, help="Plan JSON (its \"spec\" is the student).")
@click.option("--spec", type=_PATH, default=None, help="WidthSpec JSON of the student.")
@click.option("--teacher", type=_PATH, required=True, help="Run directory of the trained teacher.")
@click.option("--beta", type=float, default=1000.0, show_default=True,
              help="Weight of the attention-transfer loss, >= 0; 0 = no distillation.")
@click.option("--kd/--no-kd", default=False, help="Add the KD term (T=4, alpha=0.9).")
@_common
def distill(plan: Path | None, spec: Path | None, teacher: Path, beta: float, kd: bool,
            **kwargs: Any) -> None:
    """Train a student from scratch with attention transfer from a teacher run.

    Loss: CE + beta * sum of AT losses over the stage outputs (beta = 1000), or
    (1-alpha)*CE + alpha*T^2*KL + beta * AT with --kd. Same run directory,
    progress and --resume as train.

    \b
    Example:
      perfstudent distill --plan plan.json --teacher runs/teacher --data fashion-mnist --out runs/s1
      perfstudent distill --spec spec.json --teacher runs/teacher --data fashion-mnist --beta 0 --out runs/b
    """
    if (plan is None) == (spec is None):
        raise InputError("give exactly one of --plan or --spec")
    _run(kind="distill", plan=plan, spec=spec, teacher=teacher, beta=beta, kd=kd, **kwargs)
