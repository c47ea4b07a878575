"""The experiment TOML: strict validation, defaults, budgets, and exit code 2 naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from perfstudent.cli import cli
from perfstudent.errors import InputError
from perfstudent.experiment.budgets import budget_label, parse_duration_ms, resolve_budgets
from perfstudent.experiment.config import ConfigError, load_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GOOD = '[experiment]\nbudgets = [0.5, "3ms"]\n'


def write(tmp_path: Path, text: str, name: str = "EXP.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD + '[device]\nlut = "sub/lut.sqlite"\n'))
    assert cfg["experiment"]["budgets"] == [0.5, "3ms"]
    assert cfg["experiment"]["strategies"] == ["perf", "pruned", "uniform"]
    assert cfg["device"] == {"name": "local", "backend": "onnxruntime", "threads": 1,
                             "lut": "sub/lut.sqlite", "protocol": "default"}
    assert cfg.path("device", "lut") == tmp_path / "sub" / "lut.sqlite"  # relative to the file
    assert cfg["distill"]["beta"] == 1000.0 and cfg["train"]["teacher"] is None


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_examples_are_valid(example: Path) -> None:
    cfg = load_config(example)
    assert len(cfg["experiment"]["budgets"]) >= 2


@pytest.mark.parametrize(("text", "message"), [
    (GOOD + "[train]\nepoch = 3\n", "EXP.toml: [train] unknown key 'epoch' (did you mean 'epochs'?)"),
    (GOOD + "[trian]\nepochs = 3\n", "EXP.toml: unknown section [trian] (did you mean 'train'?)"),
    (GOOD + "[train]\nepochs = \"3\"\n", "[train] epochs must be an integer >= 1, got '3'"),
    (GOOD + "[train]\nepochs = 0\n", "[train] epochs must be an integer >= 1, got 0"),
    (GOOD + "[distill]\nkd = 1\n", "[distill] kd must be true or false, got 1"),
    (GOOD + "[device]\nthreads = 1.5\n", "[device] threads must be an integer >= 1"),
    ("[experiment]\nbudgets = [30]\n", "[experiment] budgets must be a non-empty list of a duration"),
    ("[experiment]\nbudgets = [\"3 parsecs\"]\n", "(bad item '3 parsecs')"),
    ("[experiment]\nbudgets = []\n", "[experiment] budgets must be a non-empty list, got []"),
    ("[experiment]\nbudgets = [0.5, 0.5]\n", "without duplicates"),
    (GOOD + "strategies = [\"fast\"]\n", "one of 'perf', 'pruned', 'uniform'"),
    ("[experiment]\nname = \"x\"\n", "[experiment] missing required key 'budgets'"),
    ("[device]\nname = \"local\"\n", "missing section [experiment]"),
    (GOOD + "[model]\nfamily = \"resnet20\"\nwidth = 3\n", "[model] unknown key 'width' (known: family)"),
    ("[experiment\n", "EXP.toml: not valid TOML"),
])
def test_malformed_config_exits_2_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)
    result = CliRunner().invoke(cli, ["experiment", "--config", str(path)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "experiment").exists()  # nothing was started


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["experiment", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "config not found" in result.output


def test_budgets() -> None:
    assert parse_duration_ms("3ms") == 3.0
    assert parse_duration_ms("2500us") == pytest.approx(2.5)
    assert parse_duration_ms("0.004s") == pytest.approx(4.0)
    for bad in ("3", "3 parsecs", "0ms", "-1ms"):
        with pytest.raises(InputError):
            parse_duration_ms(bad)
    resolved = resolve_budgets([0.5, "3ms", 0.25], full_ms=10.0)
    assert [(b.label, b.ms) for b in resolved] == [("x0.50", 5.0), ("3ms", 3.0), ("x0.25", 2.5)]
    assert budget_label("800µs") == "800us" and budget_label(0.333) == "x0.333"
