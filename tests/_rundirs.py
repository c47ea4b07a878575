"""Run directories written by tests, valid per the runs contract (HELPERS.md §Contracts 2)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from perfstudent.students import WidthSpec, build


def write_plan(path: Path, spec: WidthSpec, strategy: str, budget_ms: float,
               predicted_ms: float) -> dict[str, Any]:
    plan = {
        "schema": "perfstudent.plan/1", "strategy": strategy, "budget_ms": budget_ms,
        "margin_ms": 0.0, "device": "local", "backend": "onnxruntime", "threads": 1,
        "fingerprint": {"test": True}, "spec": spec.to_dict(), "predicted_ms": predicted_ms,
        "per_slot": [], "saliency_kept": 0.5,
    }
    path.write_text(json.dumps(plan, indent=2))
    return plan


def write_run(path: Path, spec: WidthSpec, *, acc: float, kind: str = "distill",
              strategy: str | None = None, seed: int = 0, budget_ms: float | None = None,
              predicted_ms: float | None = None,
              latency: dict[str, dict[str, Any]] | None = None) -> Path:
    """A finished run: config, one-epoch metrics, real (untrained) weights, summary, plan."""
    import torch

    path.mkdir(parents=True)
    model = build(spec)
    torch.save(model.state_dict(), path / "best.pt")
    torch.save(model.state_dict(), path / "last.pt")
    (path / "config.json").write_text(json.dumps({"data": "digits", "epochs": 1, "seed": seed}))
    with (path / "metrics.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"])
        writer.writerow([1, 1.0, acc, 1.0, acc, 0.1, 1.0])
    if strategy is not None:
        assert budget_ms is not None
        write_plan(path / "plan.json", spec, strategy, budget_ms, predicted_ms or budget_ms)
    summary = {
        "schema": "perfstudent.run/1", "kind": kind, "spec": spec.to_dict(), "strategy": strategy,
        "data": "digits", "seed": seed, "epochs": 1, "epochs_done": 1, "final_test_acc": acc,
        "best_test_acc": acc, "best_epoch": 1,
        "params": sum(p.numel() for p in model.parameters()), "macs": 0,
        "teacher": None if kind == "train" else "teacher", "beta": 1000.0, "kd": False,
        "latency": latency or {},
    }
    (path / "summary.json").write_text(json.dumps(summary, indent=2))
    return path


def latency_entry(ms: float) -> dict[str, Any]:
    """A stored latency entry (Measurement dict fields + fingerprint) around ``ms``."""
    samples = [ms, ms * 1.01, ms * 1.02, ms * 1.03, ms * 1.05]
    return {"ms": ms, "estimator": "min", "samples": 5, "spread": 0.02, "noisy": False, "inner": 10,
            "samples_ms": samples, "slow_ms": [], "fingerprint": {"test": True}}
