"""``summary.json`` of a run directory (:class:`~perfstudent.distill.runs.RunSummary`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfstudent.distill.runs import RunSummary
from perfstudent.students import build, network_layers


def write_summary(config: Any, job: Any, history: list[dict[str, float]]) -> RunSummary:
    """Write the summary of a run after ``len(history)`` epochs; keeps its measured latencies."""
    path = Path(config.out) / "summary.json"
    latency = RunSummary.load(path).latency if path.is_file() else {}
    best = max(history, key=lambda r: r["test_acc"]) if history else None
    model = build(job.spec)
    summary = RunSummary(
        kind=config.kind,
        spec=job.spec,
        strategy=(job.plan or {}).get("strategy"),
        data=config.data,
        seed=config.seed,
        epochs=config.epochs,
        epochs_done=len(history),
        finished=len(history) >= config.epochs,
        final_test_acc=history[-1]["test_acc"] if history else None,
        best_test_acc=best["test_acc"] if best else None,
        best_epoch=int(best["epoch"]) if best else None,
        params=sum(p.numel() for p in model.parameters()),
        macs=sum(layer.shape.macs for layer in network_layers(job.spec, 1)),
        teacher=str(config.teacher) if config.teacher is not None else None,
        teacher_test_acc=(job.teacher_run.summary.best_test_acc
                          if job.teacher_run is not None else None),
        beta=config.beta if config.kind == "distill" else None,
        kd=bool(config.kd) if config.kind == "distill" else None,
        latency=latency,
    )
    summary.save(path)
    return summary
