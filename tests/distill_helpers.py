"""Shared helpers for the training/distillation tests: tiny specs and runs on 8×8 digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfstudent.distill.trainer import TrainConfig, run_training
from perfstudent.students import WidthSpec, full_spec

TINY = {"data": "digits", "train_limit": 96, "test_limit": 48, "batch_size": 32, "threads": 1,
        "progress": False}


def tiny_spec(family: str = "resnet20", divisor: int = 8) -> WidthSpec:
    """``family`` on 8×8 digits with every slot at 1/``divisor`` width."""
    base = full_spec(family, 8, 1, 10)
    return base.with_widths({s: max(1, w // divisor) for s, w in base.widths.items()})


def tiny_run(out: Path, spec_path: Path, **overrides: Any) -> Path:
    """Train a tiny run of ``spec_path`` (1 epoch unless overridden)."""
    settings: dict[str, Any] = {**TINY, "epochs": 1, **overrides}
    return run_training(TrainConfig(out=out, spec=spec_path, **settings))


def metric_rows(run: Path) -> list[dict[str, str]]:
    import csv

    with (run / "metrics.csv").open() as fh:
        return list(csv.DictReader(fh))


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file's bytes, to check a directory was left intact."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return {str(p.relative_to(directory)): p.read_bytes() for p in files}
