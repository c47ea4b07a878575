"""`perfstudent front` on run directories the test writes itself."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from perfstudent.cli import cli
from perfstudent.students import full_spec
from tests._rundirs import latency_entry, write_run

pytest.importorskip("perfstudent.distill.runs", reason="run directories land with the train area")

KEY = "local/onnxruntime/t1"


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    base = full_spec("resnet20", 8, 1, 10)
    thin = base.with_widths({s: max(1, w // 2) for s, w in base.widths.items()})
    out = [write_run(tmp_path / "teacher", base, acc=0.95, kind="train",
                     latency={KEY: latency_entry(4.0)})]
    for i, (strategy, acc, lat) in enumerate([("perf", 0.9, 2.0), ("pruned", 0.8, 2.2),
                                              ("uniform", 0.85, 1.9)]):
        for seed in (0, 1):
            out.append(write_run(tmp_path / f"{strategy}-s{seed}", thin, acc=acc + 0.01 * seed,
                                 strategy=strategy, seed=seed, budget_ms=2.5,
                                 latency={KEY: latency_entry(lat + 0.05 * i * seed)}))
    return out


def test_front_from_stored_latencies(runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "fig" / "front.png"
    result = CliRunner().invoke(cli, ["front", *map(str, runs), "--no-measure", "--no-staircase",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("front.png", "front.svg", "front.csv", "front-summary.csv"):
        assert (out.parent / name).stat().st_size > 0, name
    points = pd.read_csv(out.parent / "front.csv")
    assert len(points) == 7 and set(points["series"]) == {"teacher", "perf", "pruned", "uniform"}
    perf = points[points["series"] == "perf"].sort_values("seed")
    assert list(perf["acc_pct"]) == pytest.approx([90.0, 91.0])
    assert list(perf["budget_ms"]) == [2.5, 2.5]
    summary = pd.read_csv(out.parent / "front-summary.csv")
    assert summary.set_index("series").loc["perf", "acc_pct"] == pytest.approx(90.5)


def test_missing_latency_without_measuring_exits_2(runs: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["front", str(runs[1]), "--threads", "2", "--no-measure",
                                      "--out", str(tmp_path / "f.png")])
    assert result.exit_code == 2
    assert "no latency for local/onnxruntime/t2" in result.output


def test_not_a_run_directory_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["front", str(tmp_path / "empty"), "--out",
                                      str(tmp_path / "f.png")])
    assert result.exit_code == 2 and result.output.startswith("error: ")


def test_bad_figure_suffix_exits_2(runs: list[Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["front", str(runs[0]), "--out", str(tmp_path / "f.jpg")])
    assert result.exit_code == 2 and ".png or .svg" in result.output


def test_measures_and_stores_back(runs: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("perfstudent.profiler.measure", reason="measure_spec lands with the profiler")
    run = runs[1]
    result = CliRunner().invoke(cli, ["front", str(run), "--no-staircase", "--out",
                                      str(tmp_path / "f.png"), "--threads", "2",
                                      "--protocol", "fast"])
    assert result.exit_code == 0, result.output
    stored = json.loads((run / "summary.json").read_text())["latency"]
    assert set(stored) == {KEY, "local/onnxruntime/t2"}
    entry = stored["local/onnxruntime/t2"]
    assert entry["ms"] > 0 and entry["samples"] >= 3 and "fingerprint" in entry
    assert entry["measured_together"] == 1
    from datetime import datetime
    assert datetime.fromisoformat(entry["measured_at"]).tzinfo is not None  # UTC, said so
    assert entry["load_before"] >= 0 and entry["load_after"] >= 0
    points = pd.read_csv(tmp_path / "f.csv")
    assert points.loc[0, "latency_ms"] == pytest.approx(entry["ms"])
    assert bool(points.loc[0, "measured_now"])


def test_runs_missing_a_latency_are_measured_together(runs: list[Path], tmp_path: Path) -> None:
    """Two runs without a t2 entry: one interleaved measurement of both, the others untouched."""
    before = (runs[0] / "summary.json").read_bytes()
    kept = [json.loads((r / "summary.json").read_text())["latency"][KEY] for r in runs[1:3]]
    result = CliRunner().invoke(cli, ["front", str(runs[1]), str(runs[2]), "--no-staircase",
                                      "--out", str(tmp_path / "f.png"), "--threads", "2",
                                      "--protocol", "fast"])
    assert result.exit_code == 0, result.output
    entries = [json.loads((r / "summary.json").read_text())["latency"] for r in runs[1:3]]
    for stored, old in zip(entries, kept, strict=True):
        assert stored["local/onnxruntime/t2"]["measured_together"] == 2
        assert stored[KEY] == old  # the t1 entries are kept as they were
    assert entries[0]["local/onnxruntime/t2"]["fingerprint"] == \
        entries[1]["local/onnxruntime/t2"]["fingerprint"]
    assert (runs[0] / "summary.json").read_bytes() == before


def test_runs_that_cannot_fit_together_are_refused_before_any_is_built(
        runs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("perfstudent.resources.available_memory", lambda: 1000)
    before = [(r / "summary.json").read_bytes() for r in runs[1:3]]
    result = CliRunner().invoke(cli, ["front", str(runs[1]), str(runs[2]), "--no-staircase",
                                      "--out", str(tmp_path / "f.png"), "--threads", "2"])
    assert result.exit_code == 2, result.output
    assert "measuring 2 runs together needs at least" in result.output
    assert [(r / "summary.json").read_bytes() for r in runs[1:3]] == before
