"""A reduced experiment end to end on tiny data: every artefact exists and is consistent.

Real profiling (fast timing protocol), real training/distillation (1 epoch on a
few hundred digits), real planning and measurement; then a re-run that must do
no work, and (slow) a real SIGKILL mid-way followed by a re-run that completes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from perfstudent.cli import cli

pytest.importorskip("perfstudent.distill.runs", reason="needs the train area")
pytest.importorskip("perfstudent.plan.planner", reason="needs the planner area")
pytest.importorskip("perfstudent.lut", reason="needs the profiler area")

TINY = """
[experiment]
name = "tiny"
budgets = {budgets}
strategies = ["perf", "pruned", "uniform"]
seeds = [0]

[device]
lut = "lut.sqlite"
protocol = "fast"

[profile]
coarse_points = 2
tolerance = 0.5

[data]
dataset = "digits"
train_limit = 160
test_limit = 80

[train]
epochs = {teacher_epochs}
batch_size = 32
threads = 1

[saliency]
batches = 2
batch_size = 32

[distill]
epochs = {student_epochs}
batch_size = 32
threads = 1
"""

KEY = "local/onnxruntime/t1"


def write_config(tmp_path: Path, budgets: tuple[float, ...] = (0.8, 0.95), teacher_epochs: int = 1,
                 student_epochs: int = 1) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(budgets=list(budgets), teacher_epochs=teacher_epochs,
                                student_epochs=student_epochs))
    return path


def check_artefacts(exp: Path, labels: tuple[str, ...] = ("x0.80", "x0.95")) -> None:
    """Every file the experiment promises, consistent with each other."""
    from perfstudent.distill.runs import load_run

    state = json.loads((exp / "state.json").read_text())["steps"]
    assert all(e["status"] == "done" for e in state.values()), state
    budgets = {b["label"]: b["ms"] for b in json.loads((exp / "budgets.json").read_text())["budgets"]}
    assert list(budgets) == list(labels)
    points = pd.read_csv(exp / "front" / "front.csv")
    assert len(points) == 1 + len(labels) * 3
    for label, budget_ms in budgets.items():
        for strategy in ("perf", "pruned", "uniform"):
            plan = json.loads((exp / "plans" / f"{strategy}-{label}.json").read_text())
            assert plan["strategy"] == strategy and plan["budget_ms"] == pytest.approx(budget_ms)
            assert plan["predicted_ms"] <= plan["budget_ms"]
            run = load_run(exp / "runs" / f"{strategy}-{label}-s0")
            assert run.summary.kind == "distill" and run.summary.strategy == strategy
            assert run.summary.epochs_done == 1
            assert run.spec.to_dict()["widths"] == plan["spec"]["widths"]
            row = points[points["run"] == str(run.path)].iloc[0]
            assert row["series"] == strategy and row["budget_ms"] == pytest.approx(budget_ms)
            assert row["latency_ms"] == pytest.approx(run.summary.latency[KEY]["ms"])
            assert row["acc"] == pytest.approx(run.summary.final_test_acc)
    assert load_run(exp / "teacher").summary.latency[KEY]["ms"] > 0
    # one measurement of every run, after all training (teacher + 3 strategies per budget)
    assert set(points["run"].map(lambda r: load_run(Path(r)).summary.latency[KEY]
                                 ["measured_together"])) == {len(points)}
    assert state["measure"]["status"] == "done"
    assert not [k for k in state if k.startswith("measure/")]
    for name in ("front.png", "front.svg", "front-summary.csv", "front-staircase.png"):
        assert (exp / "front" / name).stat().st_size > 0, name
    assert (exp / "front" / "front.png").read_bytes()[:4] == b"\x89PNG"
    report = (exp / "report.md").read_text()
    assert "| perf |" in report and "front/front.png" in report
    entry = load_run(exp / "teacher").summary.latency[KEY]
    assert (f"every run measured together in one interleaved measurement ({KEY}, timing protocol "
            f"fast), started {entry['measured_at']}; 1-minute load average "
            f"{entry['load_before']} before, {entry['load_after']} after.") in report


def snapshot(root: Path) -> dict[str, int]:
    """mtime of every file (SQLite's transient -wal/-shm companions aside; the LUT itself counts)."""
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def run_and_rerun(tmp_path: Path, budgets: tuple[float, ...], labels: tuple[str, ...]) -> None:
    config = write_config(tmp_path, budgets)
    result = CliRunner().invoke(cli, ["experiment", "--config", str(config)])
    assert result.exit_code == 0, result.output
    exp = tmp_path / "tiny"
    check_artefacts(exp, labels)
    assert "front:" in result.output and "report:" in result.output
    before = snapshot(tmp_path)
    again = CliRunner().invoke(cli, ["experiment", "--config", str(config)])
    assert again.exit_code == 0, again.output
    assert "0 step(s) run" in again.output
    assert snapshot(tmp_path) == before  # not one file touched


def test_one_budget_experiment_end_to_end_and_rerun_does_no_work(tmp_path: Path) -> None:
    run_and_rerun(tmp_path, (0.9,), ("x0.90",))


@pytest.mark.slow
def test_two_budget_experiment_end_to_end_and_rerun_does_no_work(tmp_path: Path) -> None:
    run_and_rerun(tmp_path, (0.8, 0.95), ("x0.80", "x0.95"))


def _wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _running(state_path: Path, prefix: str) -> bool:
    try:
        steps = json.loads(state_path.read_text())["steps"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return False
    return any(k.startswith(prefix) and v["status"] == "running" for k, v in steps.items())


@pytest.mark.slow
def test_killed_experiment_resumes_and_completes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    exp, state = tmp_path / "tiny", tmp_path / "tiny" / "state.json"
    cmd = [sys.executable, "-m", "perfstudent", "experiment", "--config", str(config)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        assert _wait_for(lambda: _running(state, "distill/"), 600), "never reached a distill step"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    before = json.loads(state.read_text())["steps"]
    assert before["teacher"]["status"] == "done"
    assert not (exp / "report.md").exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    after = json.loads(state.read_text())["steps"]
    for step, entry in before.items():  # nothing finished before the kill was redone
        if entry["status"] == "done":
            assert after[step]["finished"] == entry["finished"], step
    check_artefacts(exp)
