"""Bad numbers, sizes, images and Ctrl-C: exit 2 (or 130) with one line, nothing good lost.

Hyperparameters and counts are range-checked (train/distill, --threads of every
command), sizes are checked against this machine's memory before a network is
built, imagefolder images that are decompression bombs or unreadable are named,
unsupported ONNX opsets name the supported range, and a Ctrl-C ends with exit
130 and one line that says how to go on.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from perfstudent.cli import cli
from perfstudent.resources import cpu_count
from perfstudent.students import full_spec
from tests.cli_contract import fails_cleanly, one_line_error
from tests.distill_helpers import snapshot
from tests.lut_helpers import profile_until, row_count

ROOT = Path(__file__).resolve().parents[1]
TINY_ARGS = ["--data", "digits", "--train-limit", "96", "--test-limit", "48", "--batch-size", "32",
             "--threads", "1", "--no-progress"]
CPUS = cpu_count()


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, spec_path: Path) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "run"
    result = CliRunner().invoke(cli, ["train", "--spec", str(spec_path), "--epochs", "1",
                                      "--out", str(out), *TINY_ARGS])
    assert result.exit_code == 0, result.output
    return out


def train_args(out: Path, spec_path: Path, *extra: str) -> list[str]:
    return ["train", "--spec", str(spec_path), "--epochs", "1", "--out", str(out), *TINY_ARGS, *extra]


# -- 2. hyperparameters and counts --------------------------------------------------------------

@pytest.mark.parametrize(("extra", "match"), [
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--lr", "inf"], "--lr must be a finite number"),
    (["--lr", "-inf"], "--lr must be a finite number"),
    (["--lr", "0"], "--lr must be in (0, inf)"),
    (["--momentum", "5"], "--momentum must be in [0, 1), got 5"),
    (["--momentum", "1"], "--momentum must be in [0, 1)"),
    (["--momentum", "-0.1"], "--momentum must be in [0, 1)"),
    (["--momentum", "nan"], "--momentum must be a finite number"),
    (["--weight-decay", "-0.0001"], "--weight-decay must be in [0, inf)"),
    (["--weight-decay", "inf"], "--weight-decay must be a finite number"),
    (["--seed", str(2**63)], "--seed must be an integer in 0..9223372036854775807"),
    (["--seed", str(2**64 + 5)], "--seed must be an integer in 0.."),
    (["--seed", "-1"], "--seed must be an integer in 0.."),
    (["--epochs", "100001"], "--epochs 100001 is more than 100000"),
    (["--epochs", str(10**30)], "--epochs"),
    (["--epochs", "0"], "--epochs must be an integer >= 1"),
    (["--batch-size", "0"], "--batch-size must be an integer >= 1"),
    (["--stop-after", "0"], "--stop-after must be an integer >= 1"),
    (["--threads", "100000"], f"--threads 100000 is more than the {CPUS} CPUs of this machine"),
    (["--threads", "0"], "--threads must be an integer >= 1"),
])
def test_train_refuses_out_of_range_settings(tmp_path: Path, spec_path: Path, extra: list[str],
                                             match: str) -> None:
    out = tmp_path / "run"
    fails_cleanly(train_args(out, spec_path, *extra), match, keep=[spec_path])
    assert not out.exists()  # refused before the run directory was claimed


@pytest.mark.parametrize(("extra", "match"), [
    (["--beta", "nan"], "--beta must be a finite number"),
    (["--beta", "inf"], "--beta must be a finite number"),
    (["--beta", "-1"], "--beta must be in [0, inf)"),
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--momentum", "5"], "--momentum must be in [0, 1)"),
])
def test_distill_refuses_out_of_range_settings(tmp_path: Path, spec_path: Path, teacher: Path,
                                               extra: list[str], match: str) -> None:
    before = snapshot(teacher)
    out = tmp_path / "student"
    fails_cleanly(["distill", "--spec", str(spec_path), "--teacher", str(teacher), "--epochs", "1",
                   "--out", str(out), *TINY_ARGS, *extra], match, keep=[spec_path])
    assert snapshot(teacher) == before and not out.exists()


def test_a_batch_larger_than_the_training_set_is_the_whole_set(tmp_path: Path,
                                                                spec_path: Path) -> None:
    """Chosen: accepted, not refused; each epoch is one batch of every training image (as
    DatasetBundle.batches always did), and the memory check counts that many images."""
    out = tmp_path / "run"
    args = [a if a != "32" else str(10**12) for a in train_args(out, spec_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["batch_size"] == 10**12


def test_resume_of_a_run_that_does_not_exist_is_refused(tmp_path: Path, spec_path: Path) -> None:
    missing = tmp_path / "never-started"
    fails_cleanly(train_args(missing, spec_path, "--resume"), "nothing to resume", keep=[spec_path])
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    fails_cleanly(train_args(empty, spec_path, "--resume"), "nothing to resume")
    assert list(empty.iterdir()) == []


def test_resume_of_a_real_run_still_works(tmp_path: Path, spec_path: Path) -> None:
    out = tmp_path / "run"
    first = CliRunner().invoke(cli, train_args(out, spec_path, "--epochs", "2", "--stop-after", "1"))
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, train_args(out, spec_path, "--epochs", "2", "--resume"))
    assert again.exit_code == 0, again.output
    assert "2/2 epochs" in again.output


@pytest.mark.parametrize("command", [
    ["measure", "--spec", "SPEC"],
    ["profile", "--family", "resnet20", "--input-size", "8"],
    ["front", "RUNDIR", "--out", "OUT"],
    ["lut", "validate", "--family", "resnet20", "--input-size", "8"],
])
def test_threads_above_the_cpu_count_are_refused(tmp_path: Path, spec_path: Path,
                                                 command: list[str]) -> None:
    lut = tmp_path / "lut.sqlite"
    args = [{"SPEC": str(spec_path), "RUNDIR": str(tmp_path), "OUT": str(tmp_path / "f.png")}.get(a, a)
            for a in command]
    if command[0] in ("profile", "lut"):
        args += ["--lut", str(lut)]
    fails_cleanly([*args, "--threads", "100000"],
                  f"--threads 100000 is more than the {CPUS} CPUs of this machine", keep=[spec_path])
    assert not lut.exists() and not (tmp_path / "f.png").exists()


def test_threads_of_a_remote_board_are_checked_against_the_board() -> None:
    from perfstudent.errors import InputError
    from perfstudent.profiler.backends import check_device_threads, device_cpus
    from perfstudent.profiler.devices import get_device

    pi4 = get_device("pi4")
    if pi4.reach == "rpc":  # off the board: its 4 cores, not this machine's
        assert device_cpus(pi4) == 4
        check_device_threads(pi4, 4)
        with pytest.raises(InputError, match="more than the 4 CPUs of device pi4"):
            check_device_threads(pi4, 5)


# -- 3. memory, before anything is built ---------------------------------------------------------

def test_export_of_a_network_larger_than_memory_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "big.onnx"
    out.write_bytes(b"a good file")
    fails_cleanly(["export", "--family", "resnet20", "--input-size", "100000", "--out", str(out)],
                  "needs at least", keep=[out])
    fails_cleanly(["export", "--family", "resnet20", "--batch", str(10**9), "--out", str(out)],
                  "of memory, but only", keep=[out])


def test_profile_of_a_network_larger_than_memory_is_refused(tmp_path: Path) -> None:
    lut = tmp_path / "lut.sqlite"
    fails_cleanly(["profile", "--family", "resnet20", "--input-size", "100000", "--lut", str(lut)],
                  "profiling resnet20 at input size 100000")
    assert not lut.exists()


def test_measure_of_a_network_larger_than_memory_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "huge.json"
    full_spec("resnet20", 100000).save(spec)
    fails_cleanly(["measure", "--spec", str(spec), "--backend", "torch"],
                  "measuring resnet20 at input size 100000", keep=[spec])


def test_training_larger_than_memory_is_refused(tmp_path: Path, spec_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("perfstudent.resources.available_memory", lambda: 100_000)
    out = tmp_path / "run"
    fails_cleanly(train_args(out, spec_path), "training resnet20 at input size 8, batch 32",
                  keep=[spec_path])
    assert not out.exists()


def test_the_estimate_is_the_documented_sum() -> None:
    from perfstudent.students import network_layers
    from perfstudent.students.memory import activation_bytes, memory_bytes, weight_bytes

    spec = full_spec("resnet20", 32)
    outputs = sum(layer.shape.cout * layer.shape.out_height * layer.shape.out_width
                  for layer in network_layers(spec))
    assert activation_bytes(spec, 4) == 4 * (3 * 32 * 32 + outputs) * 4
    assert 0.25e6 < weight_bytes(spec) / 4 < 0.3e6  # resnet20: 0.27 M parameters
    assert memory_bytes(spec, 4, training=True) > memory_bytes(spec, 4)


def write_folder(root: Path, size: int = 24) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
                root / split / cls / "0.png")


def test_imagefolder_at_an_input_size_beyond_memory_is_refused_before_decoding(
        tmp_path: Path) -> None:
    write_folder(tmp_path / "imgs")
    out = tmp_path / "run"
    fails_cleanly(["train", "--family", "resnet20", "--data", f"imagefolder:{tmp_path / 'imgs'}",
                   "--input-size", "100000", "--epochs", "1", "--out", str(out), "--no-progress"],
                  "imagefolder: 2 images")
    assert not out.exists()


# -- 4. images -------------------------------------------------------------------------------------

def imagefolder_train(tmp_path: Path) -> list[str]:
    return ["train", "--family", "resnet20", "--data", f"imagefolder:{tmp_path / 'imgs'}",
            "--input-size", "8", "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"]


def test_a_decompression_bomb_is_refused_naming_the_file(tmp_path: Path) -> None:
    from PIL import Image

    write_folder(tmp_path / "imgs")
    bomb = tmp_path / "imgs" / "train" / "b" / "bomb.png"
    # 200 M pixels (more than twice PIL's limit) in a file of a few hundred kB
    Image.new("1", (20_000, 10_000)).save(bomb)
    assert bomb.stat().st_size < 2_000_000
    line = fails_cleanly(imagefolder_train(tmp_path), str(bomb))
    assert "decompression bomb" in line
    assert not (tmp_path / "run").exists()


def test_an_image_above_the_limit_is_refused_where_pil_only_warns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    write_folder(tmp_path / "imgs")  # 24x24 = 576 pixels, between the limit and twice it
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)
    fails_cleanly(imagefolder_train(tmp_path), "refusing image")


@pytest.mark.parametrize("content", [
    b"not a png",
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # a PNG signature and nothing valid after it
    "TRUNCATED",
])
def test_an_unreadable_image_is_refused_naming_the_file(tmp_path: Path, content: Any) -> None:
    write_folder(tmp_path / "imgs")
    broken = tmp_path / "imgs" / "val" / "a" / "broken.png"
    if content == "TRUNCATED":
        good = (tmp_path / "imgs" / "val" / "a" / "0.png").read_bytes()
        content = good[: len(good) // 2]
    broken.write_bytes(content)
    fails_cleanly(imagefolder_train(tmp_path), f"cannot read image {broken}", keep=[broken])


# -- 5. opsets -------------------------------------------------------------------------------------

@pytest.mark.parametrize("opset", ["99", "16", "0", "-3"])
def test_export_with_an_unsupported_opset_names_the_range(tmp_path: Path, opset: str) -> None:
    from perfstudent.students.export import supported_opsets

    supported = supported_opsets()
    out = tmp_path / "model.onnx"
    out.write_bytes(b"a good file")
    fails_cleanly(["export", "--family", "resnet20", "--opset", opset, "--out", str(out)],
                  f"opset {opset} is not supported: export writes opsets "
                  f"{supported.start}..{supported.stop - 1}", keep=[out])


def test_export_at_the_newest_supported_opset_works(tmp_path: Path) -> None:
    from perfstudent.students.export import supported_opsets

    out = tmp_path / "model.onnx"
    newest = supported_opsets().stop - 1
    result = CliRunner().invoke(cli, ["export", "--family", "resnet20", "--input-size", "8",
                                      "--opset", str(newest), "--out", str(out)])
    assert result.exit_code == 0, result.output
    import onnx

    assert max(op.version for op in onnx.load(str(out)).opset_import if op.domain in ("", "ai.onnx")) \
        == newest


# -- click's own errors, in the same one line ------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["train", "--family", "resnet20", "--out", "x", "--epochs", "many"],
    ["export", "--family", "resnet20", "--out", "x.onnx", "--bogus"],
    ["no-such-command"],
    ["profile"],
])
def test_usage_errors_are_one_line(args: list[str]) -> None:
    line = fails_cleanly(args)
    assert "--help" in line


# -- 6. Ctrl-C --------------------------------------------------------------------------------------

def interrupt(*args: Any, **kwargs: Any) -> Any:
    raise KeyboardInterrupt


@pytest.mark.parametrize(("target", "args", "message"), [
    ("perfstudent.distill.trainer.run_training",
     ["train", "--family", "resnet20", "--out", "RUN"],
     "interrupted; re-run the same command with --resume to continue"),
    ("perfstudent.distill.trainer.run_training",
     ["distill", "--spec", "SPEC", "--teacher", "RUN", "--out", "RUN2"],
     "interrupted; re-run the same command with --resume to continue"),
    ("perfstudent.pipeline.profile",
     ["profile", "--family", "resnet20", "--input-size", "8", "--lut", "LUT"],
     "interrupted; re-run the same command to continue"),
    ("perfstudent.experiment.run_experiment",
     ["quickstart", "--out", "RUN", "--data", "digits"],
     "interrupted; re-run the same command to continue"),
    ("perfstudent.students.export.export_onnx",
     ["export", "--family", "resnet20", "--out", "OUT"],
     "interrupted"),
    ("perfstudent.profiler.devices.describe_devices", ["devices"], "interrupted"),
])
def test_ctrl_c_exits_130_with_one_line(tmp_path: Path, spec_path: Path, target: str,
                                        args: list[str], message: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(target, interrupt)
    names = {"RUN": tmp_path / "run", "RUN2": tmp_path / "run2", "SPEC": spec_path,
             "LUT": tmp_path / "lut.sqlite", "OUT": tmp_path / "m.onnx"}
    result = CliRunner().invoke(cli, [str(names.get(a, a)) for a in args])
    line = one_line_error(result, 130, message)
    assert line == f"error: {message}"
    assert "Aborted" not in result.output


def test_experiment_ctrl_c_says_re_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("perfstudent.experiment.load_config", interrupt)
    config = tmp_path / "e.toml"
    config.write_text("")
    result = CliRunner().invoke(cli, ["experiment", "--config", str(config)])
    one_line_error(result, 130, "interrupted; re-run the same command to continue")


def test_sigint_during_profile_exits_130_and_a_re_run_completes(tmp_path: Path) -> None:
    lut = tmp_path / "lut.sqlite"
    proc, cmd, env = profile_until(lut, 10, stderr=subprocess.PIPE)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    stderr = err.decode()
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "Aborted" not in stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].endswith("error: interrupted; re-run the same command "
                                                   "to continue"), stderr[-2000:]
    kept = row_count(lut)
    assert kept >= 10
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"({kept} already in the LUT)" in done.stdout
