"""CLI: profile, measure and lut show/export/import/merge/validate, incl. every bad-input path."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from perfstudent.cli import cli
from perfstudent.students import full_spec
from tests.cli_contract import fails_cleanly

TINY = ["--arch", "resnet20", "--input-size", "8", "--protocol", "smoke", "--tolerance", "1.0"]


def rows(path: Path) -> list[tuple[str, str, float]]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT fingerprint, chain, ms FROM rows"))


@pytest.fixture(scope="module")
def lut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real LUT: resnet20 at 8x8, coarse grid only, smoke protocol (a few seconds)."""
    path = tmp_path_factory.mktemp("lut") / "lut.sqlite"
    result = CliRunner().invoke(cli, ["profile", *TINY, "--lut", str(path), "--json"])
    assert result.exit_code == 0, result.output
    return path


def test_profile_report_and_rerun_measures_nothing(lut: Path) -> None:
    before = rows(lut)
    result = CliRunner().invoke(cli, ["profile", *TINY, "--lut", str(lut), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["measured"] == 0 and report["skipped"] > 0 and rows(lut) == before


def test_lut_show(lut: Path) -> None:
    result = CliRunner().invoke(cli, ["lut", "show", "--lut", str(lut), "--json"])
    assert result.exit_code == 0, result.output
    (fp,) = json.loads(result.stdout)["fingerprints"]
    (sw,) = fp["sweeps"]
    # rows are chains (an identity block has two per width); measured counts (block, width) pairs
    assert sw["measured"] < fp["rows"] <= 2 * sw["measured"]
    assert sw["answerable"] == sw["total"] > sw["measured"]
    text = CliRunner().invoke(cli, ["lut", "show", "--lut", str(lut)])
    assert "resnet20 @8 (adaptive)" in text.output and "overhead" in text.output
    # the term shown is the one predictions use: fitted on the smoothed rows
    from perfstudent.lut import LatencyTable
    from perfstudent.students import full_spec

    with LatencyTable.open(lut, create=False) as table:
        view = table.view(table.fingerprints()[0])
    spec = full_spec("resnet20", 8)
    (ctx,) = fp["overheads"]
    assert fp["overheads"][ctx] == pytest.approx(view.fixed_ms(spec))
    assert fp["scales"][ctx] == pytest.approx(view.scale(spec))
    assert f"scale {view.scale(spec):.3f} (fitted on the smoothed rows)" in text.output


def test_measure_and_validate(lut: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    full_spec("resnet20", 8).with_widths({"layer3.2": 7}).save(spec)
    result = CliRunner().invoke(cli, ["measure", "--spec", str(spec), "--protocol", "smoke", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["measurement"]["ms"] > 0
    result = CliRunner().invoke(cli, ["lut", "validate", "--arch", "resnet20", "--input-size", "8",
                                      "--samples", "6", "--protocol", "smoke", "--lut", str(lut),
                                      "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert summary["samples"] == len(report["students"]) >= 6
    assert {s["kind"] for s in report["students"]} >= {"uniform", "stage", "few-full", "plan-perf"}
    for name in ("lut", "lut, unsmoothed", "isolated", "macs", "noise_floor"):
        assert 0 <= summary[name]["within_5pct"] <= summary[name]["within_10pct"] <= 1
    from perfstudent.lut import LatencyTable

    with LatencyTable.open(lut, create=False) as table:
        (fp,) = table.fingerprints()
        stored = table.validations(fp, {"family": "resnet20", "input_size": 8, "in_channels": 3,
                                        "num_classes": 10, "batch": 1})
    assert len(stored[-1]["residuals"]) == summary["samples"]
    assert stored[-1]["kinds"] == [s["kind"] for s in report["students"]]  # plan --margin auto reads them
    assert [s["measured_ms"] for s in stored[-1]["students"]] == \
        pytest.approx([s["measured_ms"] for s in report["students"]])  # re-read by plan --margin auto
    text = CliRunner().invoke(cli, ["lut", "validate", "--arch", "resnet20", "--input-size", "8",
                                    "--samples", "4", "--protocol", "smoke", "--no-plans",
                                    "--predictors", "lut,macs", "--estimator", "min",
                                    "--lut", str(lut)])
    assert text.exit_code == 0, text.output
    assert "noise floor" in text.output and "isolated" not in text.output
    assert "estimator min" in text.output


def test_export_import_merge(lut: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    assert CliRunner().invoke(cli, ["lut", "export", "--lut", str(lut), "--format", "csv",
                                    "--out", str(out)]).exit_code == 0
    dst = tmp_path / "dst.sqlite"
    result = CliRunner().invoke(cli, ["lut", "import", str(out), "--lut", str(dst)])
    assert result.exit_code == 0 and "added" in result.output, result.output
    assert rows(dst) == rows(lut)
    merged = tmp_path / "merged.sqlite"
    assert CliRunner().invoke(cli, ["lut", "merge", str(lut), "--lut", str(merged)]).exit_code == 0
    assert rows(merged) == rows(lut)


@pytest.mark.parametrize(("args", "match"), [
    (["--device", "mars"], "unknown device 'mars'"),
    (["--backend", "nope"], "unknown backend 'nope'"),
    (["-o", "opt_level=max"], "opt_level must be one of"),
])
def test_profile_bad_target_leaves_lut_intact(lut: Path, args: list[str], match: str) -> None:
    fails_cleanly(["profile", *TINY, "--lut", str(lut), *args], match, keep=[lut])


def test_profile_unknown_arch(lut: Path) -> None:
    fails_cleanly(["profile", "--arch", "resnet7", "--lut", str(lut)], "unknown family 'resnet7'", keep=[lut])


def test_other_fingerprint_is_refused(lut: Path) -> None:
    fails_cleanly(["lut", "validate", "--arch", "resnet20", "--input-size", "8", "--threads", "2",
                    "--lut", str(lut)], "threads 1 vs 2", keep=[lut])


def test_corrupt_and_foreign_luts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database\n")
    fails_cleanly(["profile", *TINY, "--lut", str(bad)], "not an SQLite file", keep=[bad])
    fails_cleanly(["lut", "show", "--lut", str(bad)], "not an SQLite file", keep=[bad])
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    fails_cleanly(["lut", "show", "--lut", str(foreign)], "not a perfstudent LUT", keep=[foreign])


def test_unwritable_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    fails_cleanly(["profile", *TINY, "--lut", str(tmp_path / "file" / "lut.sqlite")],
                   match="cannot create LUT directory")
    fails_cleanly(["lut", "show", "--lut", str(tmp_path / "none.sqlite")], match="no LUT at")
    fails_cleanly(["lut", "import", str(tmp_path / "none.csv"), "--lut", str(tmp_path / "l.sqlite")],
                   match="no such file")


def test_merge_conflict_leaves_lut_intact(lut: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    other.write_bytes(lut.read_bytes())
    with sqlite3.connect(other) as conn:
        conn.execute("UPDATE rows SET ms = ms * 2, measurement = json_set(measurement, "
                     "'$.samples_ms[0]', json_extract(measurement, '$.samples_ms[0]') * 2)")
    target = tmp_path / "target.sqlite"
    target.write_bytes(lut.read_bytes())
    fails_cleanly(["lut", "merge", str(other), "--lut", str(target)], "conflict", keep=[target])


def test_measure_needs_one_input() -> None:
    fails_cleanly(["measure"], match="exactly one of --spec or --plan")


def test_validate_that_cannot_fit_in_memory_is_refused_before_anything_is_built(
        lut: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("perfstudent.resources.available_memory", lambda: 1000)
    before = lut.read_bytes()
    result = CliRunner().invoke(cli, ["lut", "validate", "--arch", "resnet20", "--input-size", "8",
                                      "--samples", "4", "--protocol", "smoke", "--lut", str(lut)])
    assert result.exit_code == 2, result.output
    assert "validating" in result.output and "needs at least" in result.output
    assert "Traceback" not in result.output
    assert lut.read_bytes() == before  # no residuals stored
