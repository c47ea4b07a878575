"""Scale-out: ``torchrun --nproc_per_node 2`` runs ``train``/``distill`` with DDP on CPU (gloo)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.distill_helpers import metric_rows, tiny_spec

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--data", "digits", "--train-limit", "96", "--test-limit", "48", "--batch-size", "16",
        "--no-progress", "--device-type", "cpu"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "perfstudent", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow  # two torchrun launches: ~25 s on an idle 2-core machine, 60 s under load
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_two_cpu_processes_train_then_distill(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.json"
    tiny_spec().save(spec)
    teacher = tmp_path / "teacher"
    done = _torchrun("train", "--spec", str(spec), "--epochs", "2", "--out", str(teacher), *ARGS)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = metric_rows(teacher)
    assert [r["epoch"] for r in rows] == ["1", "2"]  # written once, by rank 0 only
    for row in rows:  # accuracies are over all 48 test images, reduced across both ranks
        assert abs(float(row["test_acc"]) * 48 - round(float(row["test_acc"]) * 48)) < 1e-3
    assert done.stdout.count("2/2 epochs") == 1
    student = tmp_path / "student"
    done = _torchrun("distill", "--spec", str(spec), "--teacher", str(teacher), "--epochs", "1",
                     "--out", str(student), *ARGS)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((student / "summary.json").read_text())
    assert summary["kind"] == "distill" and summary["epochs_done"] == 1
