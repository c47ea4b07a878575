"""``perfstudent train`` / ``distill`` through the CLI: success, kill -9 + --resume, bad inputs (exit 2)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from perfstudent.cli import cli
from perfstudent.students import full_spec
from tests.cli_contract import one_line_error
from tests.distill_helpers import metric_rows, snapshot

ROOT = Path(__file__).resolve().parents[1]
TINY_ARGS = ["--data", "digits", "--train-limit", "96", "--test-limit", "48", "--batch-size", "32",
             "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, spec_path: Path) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "run"
    result = CliRunner().invoke(cli, ["train", "--spec", str(spec_path), "--epochs", "1", "--out", str(out),
                                      *TINY_ARGS])
    assert result.exit_code == 0, result.output
    return out


def test_train_and_distill_commands(tmp_path: Path, teacher: Path, spec_path: Path) -> None:
    out = tmp_path / "student"
    result = CliRunner().invoke(cli, ["distill", "--spec", str(spec_path), "--teacher", str(teacher),
                                      "--epochs", "1", "--kd", "--out", str(out), *TINY_ARGS])
    assert result.exit_code == 0, result.output
    assert "1/1 epochs, test acc" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "distill" and summary["kd"] is True and summary["teacher"] == str(teacher)


def test_kill_9_then_resume_has_every_epoch_once(tmp_path: Path, spec_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--spec", str(spec_path), "--epochs", "40", "--out", str(out), *TINY_ARGS]
    proc = subprocess.Popen([sys.executable, "-m", "perfstudent", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "metrics.csv").is_file() and len(metric_rows(out)) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = len(metric_rows(out))
    assert 2 <= done < 40
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == done
    result = CliRunner().invoke(cli, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert [int(r["epoch"]) for r in metric_rows(out)] == list(range(1, 41))
    assert json.loads((out / "summary.json").read_text())["epochs_done"] == 40


def test_unknown_dataset_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["train", "--arch", "resnet20", "--data", "imagenet-ish", "--out",
                                      str(tmp_path / "r")])
    one_line_error(result, match="unknown dataset 'imagenet-ish'")
    assert not (tmp_path / "r").exists()


def _tiny_cifar(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [0, 1]}
        (root / name).write_bytes(pickle.dumps(batch))
    return root


def test_teacher_for_other_data_exits_2(tmp_path: Path, teacher: Path) -> None:
    spec = tmp_path / "cifar-spec.json"
    full_spec("resnet20", 32, 3, 10).save(spec)
    before = snapshot(teacher)
    result = CliRunner().invoke(cli, ["distill", "--spec", str(spec), "--teacher", str(teacher), "--data",
                                      f"cifar10:{_tiny_cifar(tmp_path)}", "--out", str(tmp_path / "s")])
    one_line_error(result, match="was not trained for dataset cifar10:")
    assert "in_channels 1 (data: 3)" in result.output
    assert snapshot(teacher) == before and not (tmp_path / "s").exists()


def test_plan_of_another_family_exits_2(tmp_path: Path, teacher: Path) -> None:
    plan = {"schema": "perfstudent.plan/1", "strategy": "perf",
            "spec": full_spec("wrn-10-1", 8, 1, 10).to_dict()}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    result = CliRunner().invoke(cli, ["distill", "--plan", str(tmp_path / "plan.json"), "--teacher",
                                      str(teacher), "--out", str(tmp_path / "s"), *TINY_ARGS])
    one_line_error(result, match="is a resnet20 but the student is a wrn-10-1")


def test_spec_that_does_not_fit_the_data_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "s.json"
    full_spec("resnet20", 32, 3, 10).save(spec)
    result = CliRunner().invoke(cli, ["train", "--spec", str(spec), "--out", str(tmp_path / "r"), *TINY_ARGS])
    one_line_error(result, match="does not fit dataset digits: in_channels 3 (data: 1)")


def test_unwritable_output_exits_2(tmp_path: Path, spec_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["train", "--spec", str(spec_path), "--epochs", "1", "--out",
                                      str(blocker / "run"), *TINY_ARGS])
    one_line_error(result, match="cannot create run directory")
    result = CliRunner().invoke(cli, ["train", "--spec", str(spec_path), "--epochs", "1", "--out",
                                      str(blocker), *TINY_ARGS])
    one_line_error(result, match="is not a directory")
    assert blocker.read_text() == "x"


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize(("payload", "message"), [
    (lambda p: torch.save([1, 2, 3], p), "is not a state-dict checkpoint"),
    (lambda p: p.write_bytes(pickle.dumps(_Evil())), "cannot be loaded safely (weights_only)"),
    (lambda p: p.write_bytes(b"garbage"), "cannot be loaded safely (weights_only)"),
])
def test_bad_teacher_checkpoint_exits_2_and_leaves_runs_intact(tmp_path: Path, teacher: Path,
                                                               spec_path: Path, payload: object,
                                                               message: str) -> None:
    bad = tmp_path / "bad-teacher"
    shutil.copytree(teacher, bad)
    payload(bad / "best.pt")  # type: ignore[operator]
    existing = tmp_path / "existing"
    shutil.copytree(teacher, existing)
    before_bad, before_existing = snapshot(bad), snapshot(existing)
    result = CliRunner().invoke(cli, ["distill", "--spec", str(spec_path), "--teacher", str(bad),
                                      "--out", str(existing), "--force", *TINY_ARGS])
    one_line_error(result, match=message)
    assert snapshot(bad) == before_bad and snapshot(existing) == before_existing
    assert not (Path.cwd() / "pwned").exists() and not (ROOT / "pwned").exists()


def test_usage_errors_exit_2(tmp_path: Path, teacher: Path) -> None:
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "r")])
    one_line_error(result, match="exactly one of --family or --spec")
    result = CliRunner().invoke(cli, ["distill", "--teacher", str(teacher), "--out", str(tmp_path / "r")])
    one_line_error(result, match="exactly one of --plan or --spec")
    result = CliRunner().invoke(cli, ["distill", "--spec", "x.json", "--teacher", str(tmp_path),
                                      "--out", str(tmp_path / "r")])
    one_line_error(result, match="spec file not found")


def test_resume_from_a_malicious_last_checkpoint_exits_2(tmp_path: Path, teacher: Path,
                                                         spec_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(teacher, run)
    (run / "last.pt").write_bytes(pickle.dumps(_Evil()))
    before = snapshot(run)
    result = CliRunner().invoke(cli, ["train", "--spec", str(spec_path), "--epochs", "1", "--out", str(run),
                                      "--resume", *TINY_ARGS])
    one_line_error(result, match="cannot be loaded safely (weights_only)")
    assert snapshot(run) == before and not (ROOT / "pwned").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_exits_2(tmp_path: Path, spec_path: Path) -> None:
    result = CliRunner().invoke(cli, ["train", "--spec", str(spec_path), "--out", str(tmp_path / "r"),
                                      *TINY_ARGS, "--device-type", "cuda"])
    one_line_error(result, match="no CUDA device is available")
    assert not (tmp_path / "r").exists()
