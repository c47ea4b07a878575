"""The LUT file: creation, rows, fingerprint refusal, bad files left intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from perfstudent.convshape import ConvShape
from perfstudent.errors import InputError
from perfstudent.lut import LatencyTable, default_lut_path
from tests.lut_helpers import fingerprint, measurement

SHAPE = ConvShape("conv2d", 3, 8, 8, 8, kernel=3, padding=1, epilogue="bn+relu")


def test_rows_round_trip_and_replace(tmp_path: Path) -> None:
    fp = fingerprint()
    with LatencyTable.open(tmp_path / "a.sqlite") as table:
        table.add(fp, SHAPE, measurement(1.5, 0.1))
        assert table.has(fp, SHAPE) and table.count(fp) == 1
    with LatencyTable.open(tmp_path / "a.sqlite", create=False) as table:
        m = table.rows(fp)[SHAPE]
        assert m.median_ms == 1.5 and m.repeats_ms == (1.4, 1.5, 1.6)
        table.add(fp, SHAPE, measurement(2.0))
        assert table.count(fp) == 1 and table.view(fp).layer_ms(SHAPE) == 2.0


def test_default_path_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFSTUDENT_LUT", str(tmp_path / "env.sqlite"))
    assert default_lut_path() == tmp_path / "env.sqlite"
    monkeypatch.delenv("PERFSTUDENT_LUT")
    assert default_lut_path().name == "lut.sqlite"


def test_view_refuses_another_fingerprint_naming_the_difference(tmp_path: Path) -> None:
    with LatencyTable.open(tmp_path / "a.sqlite") as table:
        table.add(fingerprint(threads=1), SHAPE, measurement(1.0))
        with pytest.raises(InputError, match="threads 1 vs 2"):
            table.view(fingerprint(threads=2))
        with pytest.raises(InputError, match="opt_level extended vs all"):
            table.view(fingerprint(opt_level="all"))
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
    with pytest.raises(InputError, match="missing tables"):
        LatencyTable.open(other)
    old = tmp_path / "old.sqlite"
    LatencyTable.open(old).close()
    with sqlite3.connect(old) as conn:
        conn.execute("UPDATE meta SET value = 'perfstudent.lut/0' WHERE key = 'schema'")
    with pytest.raises(InputError, match=r"schema perfstudent\.lut/0"):
        LatencyTable.open(old)


def test_unwritable_location_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot create LUT directory"):
        LatencyTable.open(blocker / "sub" / "lut.sqlite")
    with pytest.raises(InputError, match="is a directory"):
        LatencyTable.open(tmp_path)
