"""The command line: help, version, devices, export and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from perfstudent import __version__
from perfstudent.cli import cli
from perfstudent.students import full_spec


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_help_and_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0 and "Example" in result.output and "devices" in result.output
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_every_command_has_help_with_an_example(runner: CliRunner) -> None:
    def walk(group, prefix):  # type: ignore[no-untyped-def]
        for name, cmd in group.commands.items():
            yield [*prefix, name], cmd
            if hasattr(cmd, "commands"):
                yield from walk(cmd, [*prefix, name])

    for args, _cmd in walk(cli, []):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, args
        assert "Example" in result.output, f"{' '.join(args)} --help shows no example"


def test_devices_json(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["devices", "--json"])
    assert result.exit_code == 0
    info = json.loads(result.output)
    assert info["logical_cores"] >= 1 and info["python"].count(".") == 2
    assert "torch" in info["runtimes"] and info["runtimes"]["torch"]


def test_devices_text(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["devices"])
    assert result.exit_code == 0 and "cpu_model" in result.output


def test_export_writes_onnx(runner: CliRunner, tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.json"
    full_spec("resnet20").with_widths({"layer2.1": 5}).save(spec_path)
    out = tmp_path / "m.onnx"
    result = runner.invoke(cli, ["export", "--spec", str(spec_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 100_000


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("{oops", "not valid JSON"),
        ('{"family": "resnet20", "input_size": 32, "in_channels": 3, "num_classes": 10,'
         ' "widths": {"layer1.0": 99}}', "missing slots"),
        (json.dumps({**full_spec("resnet20").to_dict(),
                     "widths": {**full_spec("resnet20").widths, "layer1.0": 99}}), "in 1..16"),
    ],
)
def test_export_bad_input_exits_2_with_one_line(runner: CliRunner, tmp_path: Path,
                                                content: str | None, message: str) -> None:
    spec_path = tmp_path / "spec.json"
    if content is not None:
        spec_path.write_text(content)
    result = runner.invoke(cli, ["export", "--spec", str(spec_path), "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_export_needs_spec_or_arch(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["export", "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2 and "exactly one of --spec or --family" in result.output
    result = runner.invoke(cli, ["export", "--arch", "resnet999", "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2 and "unknown family" in result.output


def test_export_unwritable_output(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(cli, ["export", "--arch", "resnet20", "--out", str(blocker / "m.onnx")])
    assert result.exit_code == 2 and "cannot write" in result.output


def test_unknown_option_is_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["devices", "--bogus"])
    assert result.exit_code == 2
