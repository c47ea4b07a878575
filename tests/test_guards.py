"""Nothing good is lost: output guards, validate-then-write for experiments, bounded nesting.

Every case is a real command on real files; each must exit 2 with one line and
leave the files that were there byte for byte as they were (sha256).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from perfstudent.guards import check_output, kind_of
from perfstudent.lut import Fingerprint, LatencyTable, spec_context
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.students import full_spec
from tests.cli_contract import fails_cleanly
from tests.lut_helpers import fill_lut


def sha(path: Path) -> str:
    if path.is_dir():
        return hashlib.sha256(b"".join(sha(p).encode() + p.name.encode()
                                       for p in sorted(path.rglob("*")) if p.is_file())).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def lut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LUT of resnet20 at 8 px for this machine's default target (rows written, not timed)."""
    path = tmp_path_factory.mktemp("lut") / "lut.sqlite"
    fp = Fingerprint.for_backend(get_backend("onnxruntime", get_device("local"), 1))
    with LatencyTable.open(path) as table:
        fill_lut(table, fp, "resnet20", 8, in_channels=1)
        spec = full_spec("resnet20", 8, 1, 10)
        table.record_sweep(fp, spec_context(spec), "adaptive", table.count(fp))
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A directory that looks like a finished training run (config, checkpoint, summary)."""
    run = tmp_path / "teacher"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"kind": "train", "family": "resnet20"}))
    (run / "best.pt").write_bytes(b"PK\x03\x04 a zip, as torch.save writes")
    (run / "summary.json").write_text(json.dumps({"schema": "perfstudent.run/1"}))
    return run


def test_kinds_are_told_by_content(tmp_path: Path, lut: Path, run_dir: Path) -> None:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "state.json").write_text("{}")
    (tmp_path / "plan.json").write_text(json.dumps({"schema": "perfstudent.plan/1"}))
    (tmp_path / "notes.txt").write_text("hello")
    assert kind_of(lut) == "LUT" and kind_of(run_dir / "best.pt") == "checkpoint"
    assert kind_of(run_dir) == "run directory" and kind_of(tmp_path / "exp") == "experiment directory"
    assert kind_of(tmp_path / "plan.json") == "perfstudent.plan file"
    assert kind_of(tmp_path / "notes.txt") == "file" and kind_of(tmp_path / "none") is None
    check_output(tmp_path / "plan.json", "perfstudent.plan file")  # a plan over a plan: fine
    check_output(tmp_path / "notes.txt", "perfstudent.plan file")  # an ordinary file: replaced
    check_output(lut, "perfstudent.plan file", force=True)  # the user said so


def test_plan_never_writes_over_its_inputs_or_another_kind(lut: Path, run_dir: Path,
                                                           tmp_path: Path) -> None:
    common = ["plan", "--family", "resnet20", "--input-size", "8", "--in-channels", "1",
              "--budget", "1s", "--lut", str(lut)]
    before = sha(lut)
    fails_cleanly([*common, "--out", str(lut)], "is also an input of this command", keep=[lut])
    fails_cleanly([*common, "--out", str(run_dir / "best.pt")], "is a checkpoint; refusing",
                  keep=[run_dir / "best.pt"])
    fails_cleanly([*common, "--out", str(run_dir)], "is a run directory; give a file path",
                  keep=[run_dir / "config.json"])
    sal = tmp_path / "sal.json"
    sal.write_text(json.dumps({"schema": "perfstudent.saliency/1"}))
    fails_cleanly([*common, "--saliency", str(sal), "--out", str(sal)], "also an input", keep=[sal])
    other = tmp_path / "other.sqlite"
    other.write_bytes(lut.read_bytes())
    fails_cleanly([*common, "--out", str(other)], "is a LUT; refusing to replace it", keep=[other])
    assert sha(lut) == before


def test_saliency_export_and_lut_export_refuse_a_lut(lut: Path, run_dir: Path) -> None:
    fails_cleanly(["saliency", "--teacher", str(run_dir), "--data", "digits", "--out", str(lut)],
                  "is a LUT; refusing", keep=[lut])
    fails_cleanly(["saliency", "--teacher", str(run_dir), "--data", "digits",
                   "--out", str(run_dir / "best.pt")], "also an input", keep=[run_dir / "best.pt"])
    fails_cleanly(["export", "--family", "resnet20", "--out", str(lut)], "is a LUT; refusing",
                  keep=[lut])
    fails_cleanly(["lut", "export", "--lut", str(lut), "--format", "csv", "--out", str(lut)],
                  "also an input", keep=[lut])


def test_runs_and_experiments_refuse_each_others_directories(run_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "EXP.toml"
    config.write_text('[experiment]\nbudgets = [0.8]\n[data]\ndataset = "digits"\n')
    before = sha(run_dir)
    fails_cleanly(["experiment", "--config", str(config), "--out", str(run_dir)],
                  "is a run directory, not a experiment directory")
    fails_cleanly(["quickstart", "--data", "digits", "--out", str(run_dir)], "is a run directory")
    assert sha(run_dir) == before
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "state.json").write_text("{}")
    fails_cleanly(["train", "--family", "resnet20", "--data", "digits", "--epochs", "1", "--force",
                   "--out", str(exp)], "is a experiment directory, not a run directory",
                  keep=[exp / "state.json"])
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    fails_cleanly(["experiment", "--config", str(config), "--out", str(a_file)], "not a directory",
                  keep=[a_file])


def toml(sections: dict[str, dict[str, object]]) -> str:
    return "".join(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
                   for name, keys in sections.items())


@pytest.mark.parametrize(("section", "key", "value", "match"), [
    ("device", "name", "mars", "unknown device 'mars'"),
    ("device", "backend", "nope", "unknown backend 'nope'"),
    ("model", "family", "resnet7", "unknown family 'resnet7'"),
    ("train", "teacher", "missing-run", "missing-run"),
    ("experiment", "budgets", ["1us"], "is below the smallest"),
    ("train", "threads", 100000, "[train] threads 100000 is more than the"),
    ("distill", "threads", 100000, "[distill] threads 100000 is more than the"),
])
def test_a_bad_rerun_leaves_a_finished_experiment_as_it_was(lut: Path, tmp_path: Path, section: str,
                                                            key: str, value: object,
                                                            match: str) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    for name in ("config.json", "state.json", "budgets.json"):
        (exp / name).write_text(json.dumps({"finished": name}))
    sections: dict[str, dict[str, object]] = {"experiment": {"budgets": [0.8]},
                                              "device": {"lut": str(lut)},
                                              "data": {"dataset": "digits"}}
    sections.setdefault(section, {})[key] = value
    config = tmp_path / "EXP.toml"
    config.write_text(toml(sections))
    before = {p.name: sha(p) for p in exp.iterdir()}
    fails_cleanly(["experiment", "--config", str(config), "--out", str(exp)], match, keep=[lut])
    assert {p.name: sha(p) for p in exp.iterdir()} == before


def test_deep_nesting_is_refused_in_one_line(tmp_path: Path, lut: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    fails_cleanly(["measure", "--spec", str(deep)], "nests deeper")
    fails_cleanly(["plan", "--family", "resnet20", "--input-size", "8", "--budget", "1s",
                   "--lut", str(lut), "--saliency", str(deep), "--out", str(tmp_path / "p.json")],
                  "nests deeper")
    toml = tmp_path / "deep.toml"
    toml.write_text("x = " + "[" * 5_000 + "]" * 5_000 + "\n")
    fails_cleanly(["experiment", "--config", str(toml)], "nests deeper")
    assert not (tmp_path / "p.json").exists()


def test_redo_of_an_unknown_step_exits_2_and_touches_nothing(lut: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "state.json").write_text(json.dumps({"finished": True}))
    config = tmp_path / "EXP.toml"
    config.write_text(toml({"experiment": {"budgets": [0.8]}, "device": {"lut": str(lut)},
                            "data": {"dataset": "digits"}}))
    before = sha(exp / "state.json")
    fails_cleanly(["experiment", "--config", str(config), "--out", str(exp), "--redo", "mesure"],
                  "--redo 'mesure' matches no step; steps: profile, teacher, saliency", keep=[lut])
    assert sha(exp / "state.json") == before
