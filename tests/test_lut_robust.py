"""LUT files that never crash a command: damaged pages, garbage cells, read-only files.

Real LUTs (rows written through ``LatencyTable.add``, nothing timed) are damaged
the way a disk, a bad copy or a hand edit would: bytes flipped in a page,
cells updated to garbage with sqlite3, the file and its directory made
read-only. Every command that reads them (``lut show``, ``plan``, ``lut merge``
from them) exits 2 with one ``error:`` line naming the file (and, for a bad
cell, the table and the row), and every good file keeps its bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError
from perfstudent.lut import Fingerprint, LatencyTable, spec_context
from perfstudent.students import full_spec
from tests.cli_contract import fails_cleanly
from tests.lut_helpers import block, fill_lut, fingerprint, measurement

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = spec_context(full_spec("resnet20", 8))
RESIDUALS = [0.01 * i - 0.05 for i in range(20)]


def target_fingerprint() -> Fingerprint:
    """The fingerprint ``plan`` asks for by default (local, onnxruntime, one thread)."""
    from perfstudent.profiler.backends import get_backend
    from perfstudent.profiler.devices import get_device

    backend = get_backend("onnxruntime", get_device("local"), 1)
    try:
        return Fingerprint.for_backend(backend)
    finally:
        backend.close()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LUT ``plan`` can plan on: every resnet20 row at 8x8, its overhead term, a sweep and
    a validation, all of the default target's fingerprint."""
    path = tmp_path_factory.mktemp("source") / "source.sqlite"
    fp = target_fingerprint()
    with LatencyTable.open(path) as table:
        fill_lut(table, fp, "resnet20", 8)
        table.record_sweep(fp, CONTEXT, "adaptive", table.count(fp))
        table.add_validation(fp, CONTEXT, {"residuals": RESIDUALS})
    return path


@pytest.fixture
def lut(source: Path, tmp_path: Path) -> Path:
    """A fresh copy of :func:`source` to damage."""
    path = tmp_path / "bad" / "lut.sqlite"
    path.parent.mkdir()
    shutil.copyfile(source, path)
    return path


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A small good LUT of another fingerprint: the target of ``lut merge``."""
    path = tmp_path / "good" / "good.sqlite"
    with LatencyTable.open(path) as table:
        for width in (4, 8, 16):
            table.add(fingerprint(), Chain(block(width)), measurement(0.1 * width))
    return path


def digests(paths: Iterable[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()}


def plan_args(lut: Path, out: Path) -> list[str]:
    return ["plan", "--family", "resnet20", "--input-size", "8", "--budget", "1ms", "--lut", str(lut),
            "--out", str(out)]


def every_command_fails(bad: Path, good: Path, tmp_path: Path, match: str,
                        commands: Iterable[str] = ("show", "plan", "merge")) -> list[str]:
    """Run each reading command on ``bad``: exit 2, one line matching ``match``, good files kept."""
    before = digests([bad, good])
    lines = []
    for command in commands:
        if command == "show":
            lines.append(fails_cleanly(["lut", "show", "--lut", str(bad)], match, keep=[bad, good]))
        elif command == "plan":
            out = tmp_path / "p.json"
            lines.append(fails_cleanly(plan_args(bad, out), match, keep=[bad, good]))
            assert not out.exists(), "plan wrote a plan from a bad LUT"
        else:
            lines.append(fails_cleanly(["lut", "merge", str(bad), "--lut", str(good)], match,
                                       keep=[bad, good]))
    assert digests([bad, good]) == before
    return lines


def test_the_undamaged_copy_works(lut: Path, good: Path, tmp_path: Path) -> None:
    """The baseline the other tests damage: every command succeeds on it."""
    from click.testing import CliRunner

    from perfstudent.cli import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["lut", "show", "--lut", str(lut)]).exit_code == 0
    result = runner.invoke(cli, plan_args(lut, tmp_path / "p.json"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.json").exists()
    result = runner.invoke(cli, ["lut", "merge", str(lut), "--lut", str(good)])
    assert result.exit_code == 0 and "added" in result.output, result.output


# -- bytes flipped in a page ---------------------------------------------------------------------
def page_of(path: Path, table: str) -> int:
    """The 0-based page number of ``table``'s root (``None`` table: the schema page)."""
    with sqlite3.connect(path) as conn:
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    conn.close()
    return int(root) - 1


def flip(path: Path, page: int, offset: int, count: int = 16, page_size: int = 4096) -> None:
    """Invert ``count`` bytes at ``offset`` in ``page`` (plain file IO, as a bad disk would)."""
    data = bytearray(path.read_bytes())
    start = page * page_size + offset
    data[start:start + count] = bytes(b ^ 0xFF for b in data[start:start + count])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("page", "offset"), [
    ("schema", 100),   # the b-tree header of page 1, where sqlite_master lives
    ("fingerprints", 0),
    ("rows", 0),
    ("overheads", 8),  # the cell pointers of the overhead table's page
])
def test_bit_flipped_page_is_reported_as_damaged(lut: Path, good: Path, tmp_path: Path,
                                                 page: str, offset: int) -> None:
    flip(lut, 0 if page == "schema" else page_of(lut, page), offset)
    lines = every_command_fails(lut, good, tmp_path, f"LUT {lut} is damaged (quick_check: ")
    assert all(len(line) < 600 for line in lines)


def test_a_merge_into_a_missing_lut_creates_nothing_when_the_source_is_damaged(
        lut: Path, tmp_path: Path) -> None:
    flip(lut, page_of(lut, "rows"), 0)
    target = tmp_path / "new" / "target.sqlite"
    fails_cleanly(["lut", "merge", str(lut), "--lut", str(target)], "is damaged", keep=[lut])
    assert not target.exists()


def test_a_damaged_target_is_refused_and_left_alone(lut: Path, good: Path) -> None:
    flip(lut, page_of(lut, "rows"), 0)
    fails_cleanly(["lut", "merge", str(good), "--lut", str(lut)], f"LUT {lut} is damaged",
                  keep=[lut, good])


# -- garbage in cells ----------------------------------------------------------------------------
def damage(path: Path, table: str, column: str, value: object) -> int:
    """Set ``column`` of the last row of ``table`` to ``value`` (an SQL expression if a str
    starting with ``sql:``); returns that row's rowid."""
    with sqlite3.connect(path) as conn:
        (rowid,) = conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()
        if isinstance(value, str) and value.startswith("sql:"):
            conn.execute(f"UPDATE {table} SET {column} = {value[4:]} WHERE rowid = ?", (rowid,))
        else:
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (value, rowid))
    conn.close()
    return int(rowid)


ALL = ("show", "plan", "merge")
CELLS = [
    # table, column, garbage, what the message says, the commands that read the cell
    ("rows", "measurement", "{not json", "bad measurement (Expecting property name", ALL),
    ("rows", "measurement", '{"samples_ms": "fast"}', "bad measurement (samples_ms must be a list", ALL),
    ("rows", "measurement", "[1, 2, 3]", "bad measurement (not a Measurement", ALL),
    ("rows", "measurement", '{"samples_ms": [0.5], "estimator": ["p20"]}',
     "bad measurement (estimator must be a string", ALL),
    ("rows", "measurement", "sql:CAST(X'7B22FF' AS TEXT)", "bad measurement ('utf-8' codec", ALL),
    ("rows", "measurement", "sql:X'00FF'", "bad measurement (", ALL),
    ("rows", "measurement", 42, "bad measurement (", ALL),
    ("rows", "chain", "BasicBlock 16", "bad chain key (Expecting value", ALL),
    ("rows", "chain", '{"block": 5, "before": null, "after": null}', "bad chain key (", ALL),
    ("rows", "ms", "fast", "bad ms (not a finite number: 'fast')", ("merge",)),
    ("fingerprints", "data", "garbage", "bad fingerprint (Expecting value", ALL),
    ("fingerprints", "data", '{"device": "local"}', "bad fingerprint (invalid fingerprint record", ALL),
    ("fingerprints", "data", "sql:json_set(data, '$.threads', 'one')", "bad fingerprint (threads", ALL),
    ("fingerprints", "data", "sql:json_set(data, '$.settings', 7)", "bad fingerprint (settings", ALL),
    ("fingerprints", "data", "sql:json_set(data, '$.settings.width_alignment', 'four')",
     "bad fingerprint (width_alignment", ALL),
    ("fingerprints", "data", "sql:json_set(data, '$.threads', 3)", "bad fingerprint (its id", ALL),
    ("overheads", "overhead_ms", "abc", "bad overhead_ms (not a finite number: 'abc')", ALL),
    ("overheads", "data", "nope", "bad data (Expecting value", ALL),
    ("overheads", "data", '{"scale": "big"}', "bad data (not a finite number: 'big')", ALL),
    ("overheads", "data", '{"share_of_full": "half"}', "bad data (share_of_full", ("show", "merge")),
    ("overheads", "context", "resnet20", "bad context (Expecting value", ALL),
    ("validations", "data", "{]", "bad data (Expecting property name", ("plan",)),
    ("validations", "data", '{"residuals": ["a lot"]}', "bad data (residuals", ("plan",)),
    ("validations", "data", '{"residuals": [0.1], "kinds": [1]}', "bad data (kinds", ("plan",)),
    ("validations", "data", '{"residuals": [0.1], "students": [{"widths": {}}]}', "bad data (students",
     ("plan",)),
    ("sweeps", "context", "garbage", "bad context (Expecting value", ("show",)),
    ("sweeps", "context", '{"input_size": 8}', "bad context (not text: None)", ("show",)),
    ("sweeps", "shapes", "many", "bad shapes (not an integer: 'many')", ("show",)),
]


@pytest.mark.parametrize(("table", "column", "garbage", "match", "commands"), CELLS,
                         ids=[f"{t}.{c}-{i}" for i, (t, c, *_) in enumerate(CELLS)])
def test_garbage_cell_names_the_file_table_and_row(lut: Path, good: Path, tmp_path: Path, table: str,
                                                   column: str, garbage: object, match: str,
                                                   commands: tuple[str, ...]) -> None:
    rowid = damage(lut, table, column, garbage)
    for line in every_command_fails(lut, good, tmp_path, match, commands):
        assert f"error: LUT {lut}: table {table}, row {rowid} (" in line, line


def test_a_bad_row_names_its_chain(lut: Path, good: Path, tmp_path: Path) -> None:
    damage(lut, "rows", "measurement", "{}")
    (line,) = every_command_fails(lut, good, tmp_path, "bad measurement", ("show",))
    assert "(chain BasicBlock " in line and "bad measurement (malformed Measurement: missing samples_ms)" \
        in line, line


def test_a_bad_cell_in_the_merge_target_is_refused_before_anything_is_written(
        lut: Path, source: Path, tmp_path: Path) -> None:
    """The target's own row collides with one merged in: its garbage is reported, not compared."""
    rowid = damage(lut, "rows", "measurement", "garbage")
    fails_cleanly(["lut", "merge", str(source), "--lut", str(lut)],
                  f"LUT {lut}: table rows, row {rowid} (", keep=[lut, source])


# -- lut import of damaged files -------------------------------------------------------------------
def test_import_of_damaged_exports_leaves_the_lut_alone(source: Path, good: Path, tmp_path: Path) -> None:
    import pandas as pd

    from perfstudent.lut.transfer import export_table

    csv = tmp_path / "x.csv"
    with LatencyTable.open(source, create=False) as table:
        export_table(table, csv, "csv")
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame.loc[3, "measurement"] = "{broken"
    frame.to_csv(csv, index=False)
    fails_cleanly(["lut", "import", str(csv), "--lut", str(good)], f"{csv}: record 4: bad line",
                  keep=[good])
    frame.loc[3, "measurement"] = frame.loc[2, "measurement"]
    frame.loc[5, "ms"] = "nan"
    frame.to_csv(csv, index=False)
    fails_cleanly(["lut", "import", str(csv), "--lut", str(good)], "record 6: bad line (ms is not",
                  keep=[good])
    frame.loc[5, "ms"] = frame.loc[4, "ms"]  # a cell a reader would refuse is never imported
    frame.loc[1, "fingerprint"] = frame.loc[1, "fingerprint"].replace('"threads":1', '"threads":"1"')
    frame.to_csv(csv, index=False)
    fails_cleanly(["lut", "import", str(csv), "--lut", str(good)],
                  "record 2: bad line (threads has the wrong type", keep=[good])
    parquet = tmp_path / "x.parquet"
    pytest.importorskip("pyarrow")
    with LatencyTable.open(source, create=False) as table:
        export_table(table, parquet, "parquet")
    flip(parquet, 0, 200, page_size=0)
    fails_cleanly(["lut", "import", str(parquet), "--lut", str(good)], str(parquet), keep=[good])
    missing = tmp_path / "none" / "new.sqlite"
    fails_cleanly(["lut", "import", str(csv), "--lut", str(missing)], "bad line")
    assert not missing.exists()
    binary = tmp_path / "lut.csv"
    shutil.copyfile(source, binary)  # a LUT passed where an export belongs
    fails_cleanly(["lut", "import", str(binary), "--lut", str(good)], str(binary), keep=[good])


# -- read-only files ---------------------------------------------------------------------------
def test_reading_opens_read_only_and_a_write_through_it_fails_cleanly(lut: Path) -> None:
    before = digests([lut])
    with LatencyTable.open(lut, create=False) as table:
        assert table.readonly
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            table.conn.execute("DELETE FROM rows")
        with pytest.raises(InputError, match=f"cannot write LUT {lut}: it is open read-only"):
            table.add(fingerprint(), Chain(block(3)), measurement(0.3))
        assert table.count(target_fingerprint()) > 0
    assert digests([lut]) == before
    with LatencyTable.open(lut, create=False, readonly=False) as table:  # lut validate's residuals
        assert not table.readonly
        table.add_validation(target_fingerprint(), CONTEXT, {"residuals": [0.0]})
    assert digests([lut]) != before


def test_reading_never_changes_the_journal_mode_or_the_file(lut: Path, tmp_path: Path) -> None:
    rollback = tmp_path / "rollback.sqlite"
    shutil.copyfile(lut, rollback)
    with sqlite3.connect(rollback) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    before = digests([rollback])
    with LatencyTable.open(rollback, create=False) as table:
        assert table.conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert table.view(target_fingerprint()).predict(full_spec("resnet20", 8)).total_ms > 0
    assert digests([rollback]) == before


def test_an_empty_file_is_not_filled_by_a_reader(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    fails_cleanly(["lut", "show", "--lut", str(empty)], f"LUT {empty} is an empty file", keep=[empty])
    assert empty.read_bytes() == b""


def unprivileged(cmd: list[str]) -> list[str]:
    """``cmd`` run so that file permissions apply: as it is for a user; for root, in a user
    namespace as uid 1000 (root's own files are then checked against their owner bits)."""
    if os.geteuid() != 0:
        return cmd
    prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
    if shutil.which("unshare") is None or subprocess.run([*prefix, "true"],
                                                         capture_output=True).returncode != 0:
        pytest.skip("running as root without user namespaces: file permissions cannot be made to apply")
    return [*prefix, *cmd]


def perfstudent(args: list[str], wrap: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """``perfstudent ARGS`` in a process of its own (unprivileged, or inside ``wrap``)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "perfstudent", *args]
    cmd = [*wrap, *cmd] if wrap is not None else unprivileged(cmd)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def one_error_line(result: subprocess.CompletedProcess[str], match: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@contextmanager
def read_only(path: Path, directory: bool) -> Iterator[None]:
    """``path`` (and, with ``directory``, its directory) without write permission."""
    path.chmod(0o444)
    if directory:
        path.parent.chmod(0o555)
    try:
        yield
    finally:
        path.parent.chmod(0o755)
        path.chmod(0o644)


def reads_and_refuses_writes(lut: Path, good: Path, tmp_path: Path, wrap: list[str] | None = None,
                             shown: Path | None = None) -> None:
    """Every reading command reads ``shown`` (``lut`` as the command sees it); a write into it fails
    with one ``cannot write`` line; ``lut`` keeps its bytes."""
    shown = shown or lut
    before = digests([lut])
    show = perfstudent(["lut", "show", "--lut", str(shown)], wrap)
    assert show.returncode == 0 and "1 fingerprint(s)" in show.stdout, show.stderr
    out = tmp_path / "p.json"
    plan = perfstudent(plan_args(shown, out), wrap)
    assert plan.returncode == 0 and out.exists(), plan.stderr
    merged = perfstudent(["lut", "merge", str(shown), "--lut", str(good)], wrap)
    assert merged.returncode == 0 and "added" in merged.stdout, merged.stderr
    into = perfstudent(["lut", "merge", str(good), "--lut", str(shown)], wrap)
    one_error_line(into, f"cannot write LUT {shown}")
    assert digests([lut]) == before


@pytest.mark.parametrize("directory", [False, True], ids=["file", "file-and-directory"])
def test_a_read_only_lut_is_read_by_every_reading_command(lut: Path, good: Path, tmp_path: Path,
                                                          directory: bool) -> None:
    with read_only(lut, directory):
        reads_and_refuses_writes(lut, good, tmp_path)
        if directory:  # nothing could be created there: the file was read immutable
            assert sorted(p.name for p in lut.parent.iterdir()) == ["lut.sqlite"]


def test_a_lut_on_a_read_only_mount(lut: Path, good: Path, tmp_path: Path) -> None:
    mount = tmp_path / "mnt"
    mount.mkdir()
    wrap = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
            f'mount --bind -o ro "{lut.parent}" "{mount}" && exec "$@"', "sh"]
    if shutil.which("unshare") is None or subprocess.run([*wrap, "true"], capture_output=True).returncode:
        pytest.skip("no user and mount namespaces here: a read-only mount cannot be made")
    reads_and_refuses_writes(lut, good, tmp_path, wrap, shown=mount / lut.name)


def test_a_write_ahead_log_that_cannot_be_read_read_only_is_one_line(lut: Path, tmp_path: Path) -> None:
    """A crash left a ``-wal`` with rows in a directory the reader cannot write: SQLite cannot read
    it without its index, and ignoring it would drop rows, so the reader says so."""
    folder = tmp_path / "crashed"
    folder.mkdir()
    conn = sqlite3.connect(lut, isolation_level=None)  # a writer holds the log open while it is copied
    conn.execute("INSERT INTO meta VALUES ('note', 'x')")
    assert Path(f"{lut}-wal").stat().st_size > 0
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{lut}{suffix}", folder / f"lut.sqlite{suffix}")
    conn.close()
    crashed, wal = folder / "lut.sqlite", folder / "lut.sqlite-wal"
    with read_only(crashed, directory=True):
        wal.chmod(0o444)
        before = digests([crashed, wal])
        one_error_line(perfstudent(["lut", "show", "--lut", str(crashed)]),
                       f"cannot read LUT {crashed}: its write-ahead log lut.sqlite-wal holds data")
        assert digests([crashed, wal]) == before
