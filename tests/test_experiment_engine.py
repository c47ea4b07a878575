"""The resumable step engine: skip finished steps, redo invalidated ones, survive failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from perfstudent.errors import InputError, PerfStudentError
from perfstudent.experiment.engine import Step, run_steps


class Chain:
    """Three steps a -> b -> c; each appends its input to its own file (so re-runs show)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[str] = []
        self.fail_at: str | None = None
        self.params = {"a": 1, "b": 1, "c": 1}
        self.cleaned: list[tuple[str, bool]] = []

    def action(self, name: str, src: str | None) -> Callable[[], None]:
        def run() -> None:
            self.calls.append(name)
            if self.fail_at == name:
                (self.root / f"{name}.txt").write_text("partial")
                raise RuntimeError(f"{name} interrupted")
            text = (self.root / f"{src}.txt").read_text() if src else "seed"
            (self.root / f"{name}.txt").write_text(text + name)
        return run

    def check(self, name: str) -> Callable[[], str | None]:
        def check() -> str | None:
            path = self.root / f"{name}.txt"
            return None if path.exists() and path.read_text().endswith(name) else "incomplete"
        return check

    def clean(self, name: str) -> Callable[[bool], None]:
        return lambda resumable: self.cleaned.append((name, resumable))

    def steps(self) -> list[Step]:
        order = [("a", None), ("b", "a"), ("c", "b")]
        return [Step(n, {"v": self.params[n]}, self.action(n, s), self.check(n),
                     deps=(s,) if s else (), clean=self.clean(n)) for n, s in order]

    def run(self) -> list[str]:
        self.calls.clear()
        run_steps(self.steps(), self.root / "state.json", progress=False)
        return list(self.calls)


def test_second_run_does_no_work(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    assert chain.run() == ["a", "b", "c"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert chain.run() == []
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes
    state = json.loads((tmp_path / "state.json").read_text())
    assert [e["status"] for e in state["steps"].values()] == ["done"] * 3


def test_failure_mid_way_then_resume(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    chain.fail_at = "b"
    with pytest.raises(RuntimeError, match="b interrupted"):
        chain.run()
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["steps"]["a"]["status"] == "done" and state["steps"]["b"]["status"] == "running"
    chain.fail_at = None
    assert chain.run() == ["b", "c"]  # a is not redone
    assert ("b", True) in chain.cleaned  # the same attempt: offered to resume
    assert (tmp_path / "c.txt").read_text() == "seedabc"


def test_changed_setting_redoes_that_step_and_downstream(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    chain.run()
    chain.params["b"] = 2
    assert chain.run() == ["b", "c"]
    assert ("b", False) in chain.cleaned  # different settings: not resumable


def test_deleted_output_is_redone(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    chain.run()
    (tmp_path / "c.txt").unlink()
    assert chain.run() == ["c"]


def test_redone_upstream_invalidates_downstream(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    chain.run()
    (tmp_path / "a.txt").write_text("corrupt")
    assert chain.run() == ["a", "b", "c"]


def test_output_failing_its_check_is_an_error(tmp_path: Path) -> None:
    step = Step("x", {}, lambda: None, lambda: "nothing written")
    with pytest.raises(PerfStudentError, match="step x finished but its output is incomplete"):
        run_steps([step], tmp_path / "state.json", progress=False)
    assert json.loads((tmp_path / "state.json").read_text())["steps"]["x"]["status"] == "failed"


def test_valid_output_reused_without_state(tmp_path: Path) -> None:
    (tmp_path / "lut").write_text("rows")
    calls: list[int] = []
    step = Step("profile", {}, lambda: calls.append(1),
                lambda: None if (tmp_path / "lut").exists() else "no rows", reuse_valid_output=True)
    run_steps([step], tmp_path / "state.json", progress=False)
    assert calls == []
    assert json.loads((tmp_path / "state.json").read_text())["steps"]["profile"]["reused"] is True


def test_steps_no_longer_configured_leave_the_state(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    chain.run()
    steps = chain.steps()[:2]
    run_steps(steps, tmp_path / "state.json", progress=False)
    assert list(json.loads((tmp_path / "state.json").read_text())["steps"]) == ["a", "b"]


def test_redo_runs_a_finished_step_from_scratch_and_what_follows(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    chain.run()
    chain.calls.clear()
    chain.cleaned.clear()
    run_steps(chain.steps(), tmp_path / "state.json", progress=False, redo=["b"])
    assert chain.calls == ["b", "c"]  # a untouched; c follows b through its digest
    assert ("b", False) in chain.cleaned  # from scratch: not offered to resume
    assert chain.run() == []  # and then finished again


def test_redo_of_an_unknown_step_is_refused_before_anything_runs(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    chain.run()
    before = (tmp_path / "state.json").read_bytes()
    with pytest.raises(InputError, match="'measure' matches no step; steps: a, b, c"):
        run_steps(chain.steps(), tmp_path / "state.json", progress=False, redo=["measure"])
    assert (tmp_path / "state.json").read_bytes() == before


def test_time_left_goes_by_the_steps_of_each_kind_that_ran() -> None:
    """The ETA of what is left: each pending step at the mean of its kind's finished steps that
    ran (reused and unfinished ones say nothing about duration); kinds never timed are counted."""
    from perfstudent.experiment.engine import State, StepState, format_eta, time_left

    state = State({
        "teacher": StepState("done", seconds=1500.0),
        "distill/perf/x0.5/s0": StepState("done", seconds=400.0),
        "distill/pruned/x0.5/s0": StepState("done", seconds=500.0),
        "distill/uniform/x0.5/s0": StepState("running"),
        "profile": StepState("done", seconds=0.0, reused=True),
        "plan/perf/x0.5": StepState("done", seconds=2.0, reused=True),
    })
    pending = ["distill/uniform/x0.5/s0", "distill/perf/x0.5/s1", "measure", "report"]
    seconds, unknown = time_left(pending, state)
    assert seconds == pytest.approx(2 * 450.0) and unknown == 2
    assert format_eta(seconds, unknown) == "ETA >= 15m"
    assert format_eta(3 * 3600 + 7 * 60 + 40, 0) == "ETA 3h08m"
    assert format_eta(0.0, 3) == "ETA ?" and format_eta(0.0, 0) == "ETA 0m"


def test_pending_steps_follow_redo_changed_settings_and_what_is_downstream(tmp_path: Path) -> None:
    from perfstudent.experiment.engine import State, pending_steps

    chain = Chain(tmp_path)
    chain.run()
    state = State.read(tmp_path / "state.json")
    assert pending_steps(chain.steps(), state) == []
    assert pending_steps(chain.steps(), state, redo=["a"]) == ["a", "b", "c"]  # downstream follows
    chain.params["b"] = 2  # a changed setting: b's digest differs, c depends on b
    assert pending_steps(chain.steps(), state) == ["b", "c"]
    chain.params["b"] = 1
    del state.steps["c"]  # never ran
    assert pending_steps(chain.steps(), state) == ["c"]


def test_the_progress_bar_shows_the_eta_of_the_steps_left(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    chain = Chain(tmp_path)
    chain.run()
    chain.params["b"] = 2  # b and c run again; a is skipped
    run_steps(chain.steps(), tmp_path / "state.json", progress=True)
    err = capsys.readouterr().err
    assert "a, ETA" in err and "b, ETA" in err and "c, ETA" in err
