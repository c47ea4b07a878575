"""Fuzz: every command fed mutated versions of its real input files never crashes or loses a file.

Real input files (a LUT with rows, a WidthSpec, a plan, a saliency file, an
experiment config) are mutated by hypothesis: truncated, bit-flipped, a cell of
the LUT replaced by garbage, JSON nested deeply, numbers made huge, and the
output pointed at another kind of file. Whatever happens, the command must exit
0 or 2, print no traceback, and leave every file that existed before
byte for byte as it was (sha256). The default budget is small for CI;
``pytest -m slow tests/test_fuzz_inputs.py`` runs the longer variant.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfstudent.cli import cli
from perfstudent.lut import Fingerprint, LatencyTable
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.students import full_spec
from tests.lut_helpers import fill_lut

FAST = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LONG = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good input files of every kind a command reads."""
    root = tmp_path_factory.mktemp("originals")
    lut = root / "lut.sqlite"
    fp = Fingerprint.for_backend(get_backend("onnxruntime", get_device("local"), 1))
    with LatencyTable.open(lut) as table:
        fill_lut(table, fp, "resnet20", 8, in_channels=1, step=2)
    spec = full_spec("resnet20", 8, 1, 10).with_widths({"layer2.1": 5})
    spec.save(root / "spec.json")
    (root / "plan.json").write_text(json.dumps({"schema": "perfstudent.plan/1",
                                                "spec": spec.to_dict(), "budget_ms": 1.0}))
    (root / "sal.json").write_text(json.dumps({
        "schema": "perfstudent.saliency/1", "family": "resnet20", "input_size": 8, "in_channels": 1,
        "num_classes": 10, "slots": {s: [1.0] * w for s, w in spec.widths.items()}}))
    (root / "EXP.toml").write_text('[experiment]\nbudgets = [0.8]\n[data]\ndataset = "digits"\n'
                                   f'[device]\nlut = "{lut}"\n[train]\nepochs = 1\n')
    return {"lut": lut, "spec": root / "spec.json", "plan": root / "plan.json", "sal": root / "sal.json",
            "toml": root / "EXP.toml"}


def _flip(data: bytes, at: int, bit: int) -> bytes:
    if not data:
        return data
    i = at % len(data)
    return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1:]


def _deep(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


BYTE_MUTATIONS: dict[str, Callable[[bytes, int, int], bytes]] = {
    "truncate": lambda d, at, bit: d[: at % (len(d) + 1)],
    "flip": _flip,
    "deep": lambda d, at, bit: _deep(100 + at % 100_000),
    "huge": lambda d, at, bit: d.replace(b"8", b"8" + b"9" * (1 + at % 40)),
    "empty": lambda d, at, bit: b"",
}


def _garbage_cell(lut: Path, table: str, column: str, value: object) -> None:
    conn = sqlite3.connect(lut)
    try:  # closed here, so its write-ahead log is folded into the file before the hashes are taken
        with conn:
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = (SELECT min(rowid) FROM {table})",
                         (value,))
    finally:
        conn.close()


def run_checked(args: list[str], files: list[Path]) -> None:
    """The fuzz contract: exit 0 or 2, no traceback, every file that existed unchanged."""
    before = {p: sha(p) for p in files if p.exists()}
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output, result.output[-2000:]
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert {p: sha(p) for p in before} == before


def _mutated(originals: dict[str, Path], tmp: Path, which: str, how: str, at: int, bit: int) -> Path:
    path = tmp / originals[which].name
    shutil.copy(originals[which], path)
    path.write_bytes(BYTE_MUTATIONS[how](path.read_bytes(), at, bit))
    return path


def _commands(files: dict[str, Path], out: Path) -> dict[str, list[str]]:
    target = ["--family", "resnet20", "--input-size", "8", "--in-channels", "1"]
    return {
        "lut": ["lut", "show", "--lut", str(files["lut"])],
        "plan-lut": ["plan", *target, "--budget", "1s", "--lut", str(files["lut"]), "--out", str(out)],
        "plan-sal": ["plan", *target, "--budget", "1s", "--lut", str(files["lut"]),
                     "--saliency", str(files["sal"]), "--out", str(out)],
        "spec": ["export", "--spec", str(files["spec"]), "--out", str(out.with_suffix(".onnx"))],
        "plan": ["export", "--spec", str(files["plan"]), "--out", str(out.with_suffix(".onnx"))],
        "toml": ["experiment", "--config", str(files["toml"]), "--out", str(out.parent / "exp")],
    }


def _fuzz_files(originals: dict[str, Path], tmp: Path, which: str, how: str, at: int, bit: int) -> None:
    files = dict(originals)
    files[which.split("-")[0] if which != "plan-sal" else "sal"] = _mutated(
        originals, tmp, which.split("-")[0] if which != "plan-sal" else "sal", how, at, bit)
    command = _commands(files, tmp / "out.json")[which]
    if which == "toml" and how not in ("deep", "empty", "truncate"):
        return  # a mutated but valid config would start a real experiment: too slow for a fuzz loop
    run_checked(command, list(files.values()))


WHICH = st.sampled_from(["lut", "plan-lut", "plan-sal", "spec", "plan", "toml"])
HOW = st.sampled_from(list(BYTE_MUTATIONS))


@FAST
@given(which=WHICH, how=HOW, at=st.integers(0, 1 << 20), bit=st.integers(0, 7))
def test_mutated_inputs(originals: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
                        which: str, how: str, at: int, bit: int) -> None:
    _fuzz_files(originals, tmp_path_factory.mktemp("f"), which, how, at, bit)


@pytest.mark.slow
@LONG
@given(which=WHICH, how=HOW, at=st.integers(0, 1 << 20), bit=st.integers(0, 7))
def test_mutated_inputs_long(originals: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
                             which: str, how: str, at: int, bit: int) -> None:
    _fuzz_files(originals, tmp_path_factory.mktemp("f"), which, how, at, bit)


CELLS = st.sampled_from([("rows", "measurement"), ("rows", "chain"), ("rows", "ms"),
                         ("fingerprints", "data"), ("overheads", "data"), ("overheads", "overhead_ms")])
GARBAGE = st.one_of(st.text(max_size=30), st.integers(-(1 << 62), 1 << 62),
                    st.just('{"samples_ms": [1e999]}'), st.just("[" * 5000), st.just("null"),
                    st.binary(max_size=20))


@FAST
@given(cell=CELLS, value=GARBAGE)
def test_garbage_lut_cells(originals: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
                           cell: tuple[str, str], value: object) -> None:
    tmp = tmp_path_factory.mktemp("g")
    lut = tmp / "lut.sqlite"
    shutil.copy(originals["lut"], lut)
    _garbage_cell(lut, *cell, value)
    files = dict(originals, lut=lut)
    for which in ("lut", "plan-lut"):
        run_checked(_commands(files, tmp / "out.json")[which], list(files.values()))
    good = tmp / "good.sqlite"
    shutil.copy(originals["lut"], good)
    run_checked(["lut", "merge", str(lut), "--lut", str(good)], [lut, good])


@FAST
@given(kind=st.sampled_from(["lut", "spec", "plan", "sal", "toml"]),
       command=st.sampled_from(["plan", "saliency", "export", "lut-export"]))
def test_wrong_kinds_of_files_as_out(originals: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
                                     kind: str, command: str) -> None:
    tmp = tmp_path_factory.mktemp("o")
    victim = tmp / originals[kind].name
    shutil.copy(originals[kind], victim)
    target = ["--family", "resnet20", "--input-size", "8", "--in-channels", "1"]
    args = {"plan": ["plan", *target, "--budget", "1s", "--lut", str(originals["lut"])],
            "saliency": ["saliency", "--teacher", str(tmp / "no-run"), "--data", "digits"],
            "export": ["export", *target],
            "lut-export": ["lut", "export", "--lut", str(originals["lut"]), "--format", "csv"]}[command]
    result_files = [victim, *originals.values()]
    before = {p: sha(p) for p in result_files}
    result = CliRunner().invoke(cli, [*args, "--out", str(victim)])
    assert result.exit_code in (0, 2) and "Traceback" not in result.output, result.output[-2000:]
    if result.exit_code == 0:  # replaced only an ordinary file of no known kind, or the same kind
        assert kind in ("toml",) or (command == "plan" and kind == "plan"), result.output
        return
    assert {p: sha(p) for p in before} == before
