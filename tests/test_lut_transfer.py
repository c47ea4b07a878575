"""Export (CSV/Parquet), import and merge of latency tables."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError
from perfstudent.lut import LatencyTable, LatencyView
from perfstudent.lut.transfer import export_table, import_frame, merge_tables, read_frame, table_frame
from tests.lut_helpers import block, fingerprint, measurement

CTX = {"family": "resnet20", "input_size": 8, "in_channels": 3, "num_classes": 10, "batch": 1}


def shape(width: int) -> Chain:
    return Chain(block(width, full=64))


def filled(path: Path, values: dict[int, float], threads: int = 1) -> LatencyTable:
    table = LatencyTable.open(path)
    for cout, ms in values.items():
        table.add(fingerprint(threads), shape(cout), measurement(ms, 0.01))
    table.set_overhead(fingerprint(threads), CTX, 0.125, {"points": []})
    return table


def content(table: LatencyTable) -> list[tuple[str, str, str]]:
    frame = table_frame(table)
    return sorted(zip(frame["fingerprint_id"], frame["key"], frame["measurement"], strict=True))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_import_round_trip(tmp_path: Path, fmt: str) -> None:
    src = filled(tmp_path / "src.sqlite", {1: 0.5, 2: 0.75, 3: 1.0})
    src.add(fingerprint(2), shape(1), measurement(0.3))
    out = tmp_path / f"lut.{fmt}"
    assert export_table(src, out, fmt) == 5
    with LatencyTable.open(tmp_path / "dst.sqlite") as dst:
        report = import_frame(dst, read_frame(out))
        assert report.added == 5 and content(dst) == content(src)
        assert next(iter(dst.view(fingerprint(1)).overheads.values()))[0] == 0.125
        again = import_frame(dst, read_frame(out))
        assert again.added == 0 and again.identical == 5
    src.close()


def test_conflicting_duplicates_are_refused_unless_told(tmp_path: Path) -> None:
    with filled(tmp_path / "a.sqlite", {1: 0.5, 2: 0.75}) as a, \
            filled(tmp_path / "b.sqlite", {2: 0.9, 3: 1.2}) as b:
        before = content(a)
        with pytest.raises(InputError, match="conflict"):
            merge_tables(a, b.path)
        assert content(a) == before  # nothing imported
        kept = merge_tables(a, b.path, on_conflict="keep")
        assert (kept.added, kept.kept, kept.identical) == (1, 1, 1)  # overheads are equal
        assert a.rows(fingerprint())[shape(2)].ms == 0.75
        replaced = merge_tables(a, b.path, on_conflict="replace")
        assert replaced.replaced == 1 and a.rows(fingerprint())[shape(2)].ms == 0.9


def test_bad_import_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="missing columns"):
        read_frame(junk)
    with pytest.raises(InputError, match="no such file"):
        read_frame(tmp_path / "none.csv")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.dictionaries(st.integers(1, 64), st.floats(0.02, 100.0, allow_nan=False), max_size=8),
       threads=st.integers(1, 4))
def test_import_of_an_export_reproduces_the_table(values: dict[int, float], threads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = filled(Path(tmp) / "s.sqlite", values, threads)
        export_table(src, Path(tmp) / "x.csv", "csv")
        with LatencyTable.open(Path(tmp) / "d.sqlite") as dst:
            import_frame(dst, read_frame(Path(tmp) / "x.csv"))
            assert content(dst) == content(src)
            fp = fingerprint(threads)
            view = LatencyView(fp, dst.rows(fp), smooth=False)  # the rows as measured
            assert all(view.chain_ms(shape(c)) == pytest.approx(v) for c, v in values.items())
        src.close()
