"""The LUT file: creation, rows, validations, fingerprint refusal, bad files left intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError
from perfstudent.lut import LatencyTable, default_lut_path
from tests.lut_helpers import block, fingerprint, measurement

CHAIN = Chain(block(5), before=block(16), after=block(16))


def test_rows_round_trip_with_raw_samples_and_replace(tmp_path: Path) -> None:
    fp = fingerprint()
    with LatencyTable.open(tmp_path / "a.sqlite") as table:
        table.add(fp, CHAIN, measurement(1.5, 0.1))
        assert table.has(fp, CHAIN) and table.count(fp) == 1
    with LatencyTable.open(tmp_path / "a.sqlite", create=False, readonly=False) as table:
        m = table.rows(fp)[CHAIN]
        assert m.ms == 1.5 and m.samples_ms == pytest.approx((1.5, 1.6, 1.7)) and m.estimator == "min"
        table.add(fp, CHAIN, measurement(2.0))
        assert table.count(fp) == 1 and table.rows(fp)[CHAIN].ms == 2.0


def test_validations_are_kept_in_order(tmp_path: Path) -> None:
    fp, ctx = fingerprint(), {"family": "resnet20", "input_size": 8}
    with LatencyTable.open(tmp_path / "a.sqlite") as table:
        assert table.validations(fp, ctx) == []
        table.add_validation(fp, ctx, {"residuals": [0.01]})
        table.add_validation(fp, ctx, {"residuals": [0.02, -0.01]})
        assert [v["residuals"] for v in table.validations(fp, ctx)] == [[0.01], [0.02, -0.01]]
        assert table.validations(fp, ctx | {"input_size": 32}) == []


def test_default_path_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFSTUDENT_LUT", str(tmp_path / "env.sqlite"))
    assert default_lut_path() == tmp_path / "env.sqlite"
    monkeypatch.delenv("PERFSTUDENT_LUT")
    assert default_lut_path().name == "lut.sqlite"


def test_view_refuses_another_fingerprint_naming_the_difference(tmp_path: Path) -> None:
    with LatencyTable.open(tmp_path / "a.sqlite") as table:
        table.add(fingerprint(threads=1), CHAIN, measurement(1.0))
        with pytest.raises(InputError, match="threads 1 vs 2"):
            table.view(fingerprint(threads=2))
        with pytest.raises(InputError, match="opt_level all vs extended"):
            table.view(fingerprint(opt_level="extended"))
        assert fingerprint().differences(fingerprint()) == []


def test_empty_lut_names_the_profile_command(tmp_path: Path) -> None:
    with LatencyTable.open(tmp_path / "a.sqlite") as table, \
            pytest.raises(InputError, match="perfstudent profile"):
        table.view(fingerprint())


def test_missing_file_is_not_created_when_reading(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no LUT"):
        LatencyTable.open(tmp_path / "none.sqlite", create=False)
    assert not (tmp_path / "none.sqlite").exists()


def test_corrupt_file_is_refused_and_left_intact(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database, just some text\n" * 10)
    before = bad.read_bytes()
    with pytest.raises(InputError, match="not an SQLite file"):
        LatencyTable.open(bad)
    assert bad.read_bytes() == before


def test_foreign_sqlite_and_wrong_schema_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE stuff (x)")
    with pytest.raises(InputError, match="not a perfstudent LUT"):
        LatencyTable.open(other)
    old = tmp_path / "old.sqlite"
    LatencyTable.open(old).close()
    with sqlite3.connect(old) as conn:
        conn.execute("UPDATE meta SET value = 'perfstudent.lut/1' WHERE key = 'schema'")
    before = old.read_bytes()
    with pytest.raises(InputError, match=r"schema perfstudent\.lut/1.*old format.*profile again"):
        LatencyTable.open(old)
    assert old.read_bytes() == before


def test_unwritable_location_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot create LUT directory"):
        LatencyTable.open(blocker / "sub" / "lut.sqlite")
    with pytest.raises(InputError, match="is a directory"):
        LatencyTable.open(tmp_path)
