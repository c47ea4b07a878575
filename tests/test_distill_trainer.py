"""The trainer: run directories, resume = uninterrupted, checkpoints, overwrite guards, distill runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from perfstudent.distill.checkpoint import load_checkpoint
from perfstudent.distill.runs import load_run
from perfstudent.distill.trainer import TrainConfig, lr_at, run_training
from perfstudent.errors import InputError
from tests.distill_helpers import TINY, metric_rows, snapshot, tiny_run, tiny_spec


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, spec_path: Path) -> Path:
    return tiny_run(tmp_path_factory.mktemp("teacher") / "run", spec_path, epochs=2)


def test_run_directory_contract(teacher: Path) -> None:
    names = {p.name for p in teacher.iterdir()}
    assert {"config.json", "metrics.csv", "last.pt", "best.pt", "summary.json"} <= names
    rows = metric_rows(teacher)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"]
    s = json.loads((teacher / "summary.json").read_text())
    assert s["schema"] == "perfstudent.run/1" and s["kind"] == "train" and s["epochs_done"] == 2
    assert s["best_test_acc"] == max(float(r["test_acc"]) for r in rows)
    assert s["final_test_acc"] == pytest.approx(float(rows[-1]["test_acc"]), rel=1e-5)
    assert s["params"] > 0 and s["macs"] > 0 and s["teacher"] is None and s["latency"] == {}
    for name in ("last.pt", "best.pt"):  # plain data: loads with weights_only=True
        data = torch.load(teacher / name, weights_only=True)
        assert isinstance(data["model"], dict) and data["epoch"] >= 1
    last = torch.load(teacher / "last.pt", weights_only=True)
    assert {"optimizer", "rng", "history", "schedule"} <= set(last)


def test_load_run_model_and_update_summary(teacher: Path) -> None:
    run = load_run(teacher)
    assert run.spec == tiny_spec() and run.config["kind"] == "train"
    model = run.model("best")
    assert not model.training and model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    run.update_summary(latency={"local/onnxruntime/t1": {"median_ms": 1.0}})
    assert load_run(teacher).summary.latency["local/onnxruntime/t1"]["median_ms"] == 1.0
    with pytest.raises(InputError, match="not a perfstudent run directory"):
        load_run(teacher.parent)


def test_resume_reproduces_the_uninterrupted_run(tmp_path: Path, spec_path: Path) -> None:
    whole = tiny_run(tmp_path / "whole", spec_path, epochs=3, seed=3)
    part = tiny_run(tmp_path / "part", spec_path, epochs=3, seed=3, stop_after=1)
    assert [r["epoch"] for r in metric_rows(part)] == ["1"]
    assert not load_run(part).summary.finished
    tiny_run(tmp_path / "part", spec_path, epochs=3, seed=3, resume=True)
    a, b = metric_rows(whole), metric_rows(part)
    assert [r["epoch"] for r in b] == ["1", "2", "3"]
    for ra, rb in zip(a, b, strict=True):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), rel=1e-4, abs=1e-6), key
    wa = load_checkpoint(whole / "last.pt")["model"]
    wb = load_checkpoint(part / "last.pt")["model"]
    assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-5) for k in wa)


def test_existing_run_is_refused_without_resume_or_force(tmp_path: Path, spec_path: Path) -> None:
    run = tiny_run(tmp_path / "r", spec_path)
    before = snapshot(run)
    with pytest.raises(InputError, match="pass --resume to continue it or --force"):
        tiny_run(run, spec_path)
    with pytest.raises(InputError, match=r"settings differ from the original run \(lr\)"):
        tiny_run(run, spec_path, resume=True, lr=0.05)
    assert snapshot(run) == before
    tiny_run(run, spec_path, resume=True)  # finished: nothing to do, still intact
    assert [r["epoch"] for r in metric_rows(run)] == ["1"]
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        tiny_run(tmp_path / "foreign", spec_path)
    tiny_run(tmp_path / "foreign", spec_path, force=True, seed=1)
    assert (tmp_path / "foreign" / "notes.txt").read_text() == "mine"  # --force only replaces our files
    assert load_run(tmp_path / "foreign").summary.seed == 1


def test_bad_data_leaves_an_existing_run_intact(tmp_path: Path, spec_path: Path) -> None:
    run = tiny_run(tmp_path / "r", spec_path)
    before = snapshot(run)
    with pytest.raises(InputError, match="unknown dataset"):
        tiny_run(run, spec_path, force=True, data="nope")
    assert snapshot(run) == before


def test_distill_with_plan_records_strategy_and_copies_plan(tmp_path: Path, teacher: Path) -> None:
    spec = tiny_spec(divisor=16)
    plan = {"schema": "perfstudent.plan/1", "strategy": "perf", "budget_ms": 1.0, "spec": spec.to_dict()}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out = run_training(TrainConfig(out=tmp_path / "s", kind="distill", plan=tmp_path / "plan.json",
                                   teacher=teacher, epochs=1, kd=True, **TINY))  # type: ignore[arg-type]
    s = load_run(out).summary
    assert s.kind == "distill" and s.strategy == "perf" and s.beta == 1000.0 and s.kd is True
    assert s.teacher == str(teacher) and s.spec == spec
    assert json.loads((out / "plan.json").read_text()) == plan


def test_distill_beta_zero_equals_plain_training(tmp_path: Path, teacher: Path, spec_path: Path) -> None:
    base = tiny_run(tmp_path / "plain", spec_path, seed=5)
    zero = run_training(TrainConfig(out=tmp_path / "zero", kind="distill", spec=spec_path, teacher=teacher,
                                    beta=0.0, epochs=1, seed=5, **TINY))  # type: ignore[arg-type]
    at = run_training(TrainConfig(out=tmp_path / "at", kind="distill", spec=spec_path, teacher=teacher,
                                  epochs=1, seed=5, **TINY))  # type: ignore[arg-type]
    plain, z, a = metric_rows(base)[0], metric_rows(zero)[0], metric_rows(at)[0]
    assert float(plain["train_loss"]) == pytest.approx(float(z["train_loss"]), rel=1e-5)
    assert float(a["train_loss"]) != pytest.approx(float(z["train_loss"]), rel=1e-5)


def test_lr_schedules() -> None:
    cfg = TrainConfig(out=Path("x"), epochs=4, lr=0.1)
    assert [round(lr_at(cfg, e), 6) for e in range(4)] == [0.1, 0.085355, 0.05, 0.014645]
    cfg.schedule = "step"
    assert [round(lr_at(cfg, e), 6) for e in range(4)] == [0.1, 0.1, 0.01, 0.001]
