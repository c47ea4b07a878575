"""The latency table on disk: one SQLite file, schema-versioned, never pickled.

Tables: ``meta`` (schema), ``fingerprints`` (id -> JSON), ``rows``
((fingerprint, Chain.key()) -> Measurement JSON with every raw sample, the
figure in a column), ``overheads`` ((fingerprint, context) -> the overhead term
and the calibration networks it was fitted on), ``sweeps`` (which family and
input size was swept), ``validations`` (each ``lut validate``: its students'
residuals, read by ``plan --margin auto``). Every write is its own committed
transaction (WAL journal), so a killed sweep loses at most the rows in flight
and the file stays valid.

**Reading needs read permission only.** ``LatencyTable.open(path,
create=False)`` opens the file read-only (SQLite's URI ``mode=ro``; the
journal mode is never touched). A WAL file needs its ``-shm`` index: where it
cannot be created (a read-only directory or mount) and no ``-wal`` with data is
there, the file is opened ``immutable`` (no writer can be using it: a writer
would need that directory too). A writer (``create=True``, or
``readonly=False``) on a file it cannot write still reads it, and its first
write fails with one ``cannot write LUT`` line.

**Nothing read from the file is trusted.** Every cell (a row's chain key and
measurement, a fingerprint, an overhead term, a validation, a sweep) is parsed
and checked on reading; a bad one is an :class:`InputError` naming the file,
the table, the row (its ``rowid``) and what is wrong. An SQLite error while
reading runs ``PRAGMA quick_check`` and reports the file as damaged with what
it found.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from perfstudent.errors import InputError
from perfstudent.lut import cells
from perfstudent.lut.fingerprint import Fingerprint
from perfstudent.lut.view import LatencyView

if TYPE_CHECKING:
    from perfstudent.blockshape import Chain
    from perfstudent.measurement import Measurement

SCHEMA = "perfstudent.lut/2"
TABLES = ("meta", "fingerprints", "rows", "overheads", "sweeps", "validations")
_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE fingerprints (id TEXT PRIMARY KEY, data TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE rows (fingerprint TEXT NOT NULL REFERENCES fingerprints(id), chain TEXT NOT NULL,
    ms REAL NOT NULL, measurement TEXT NOT NULL, measured_at TEXT NOT NULL,
    PRIMARY KEY (fingerprint, chain));
CREATE TABLE overheads (fingerprint TEXT NOT NULL REFERENCES fingerprints(id),
    context TEXT NOT NULL, overhead_ms REAL NOT NULL, data TEXT NOT NULL, measured_at TEXT NOT NULL,
    PRIMARY KEY (fingerprint, context));
CREATE TABLE sweeps (fingerprint TEXT NOT NULL, context TEXT NOT NULL, mode TEXT NOT NULL,
    shapes INTEGER NOT NULL, completed_at TEXT NOT NULL, PRIMARY KEY (fingerprint, context));
CREATE TABLE validations (fingerprint TEXT NOT NULL, context TEXT NOT NULL, created TEXT NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (fingerprint, context, created));
"""
_SQLITE_MAGIC = b"SQLite format 3\x00"

#: One row or overhead term as ``lut merge`` copies it: (kind ``chain`` or ``overhead``,
#: fingerprint, key, ms, data JSON, measured_at); the lines of an import are the same.
Entry = tuple[str, Fingerprint, str, float, str, str]

T = TypeVar("T")


def default_lut_path() -> Path:
    """``$PERFSTUDENT_LUT``, else ``<user data dir>/perfstudent/lut.sqlite``."""
    env = os.environ.get("PERFSTUDENT_LUT")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("perfstudent")) / "lut.sqlite"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- SQLite errors -------------------------------------------------------------------------
def _error_name(exc: sqlite3.Error) -> str:
    return str(getattr(exc, "sqlite_errorname", ""))  # Python 3.11+


def _is_corruption(exc: sqlite3.Error) -> bool:
    name, text = _error_name(exc), str(exc)
    return (name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
            or "malformed" in text or "not a database" in text)


def _is_read_only(exc: sqlite3.Error) -> bool:
    """A failure to open or write because the file, its directory or the mount is read-only."""
    name, text = _error_name(exc), str(exc)
    return (name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN"))
            or "readonly database" in text or "unable to open database file" in text)


def _quick_check(conn: sqlite3.Connection) -> tuple[bool, str]:
    """``(ran, what it found)`` of ``PRAGMA quick_check`` (at most five problems)."""
    try:
        found = [str(r[0]) for r in conn.execute("PRAGMA quick_check(5)").fetchall()]
    except sqlite3.Error as exc:
        return False, f"could not run: {exc}"
    return True, "; ".join(found) or "no answer"


class _Checked(InputError):
    """A failure already told apart with ``quick_check`` (damaged, or not): not checked again."""


def _read_failure(conn: sqlite3.Connection, path: Path, exc: sqlite3.Error) -> InputError:
    """An SQLite error while reading: a damaged file (``quick_check`` says why), or another failure."""
    ran, found = _quick_check(conn)
    if (ran and found != "ok") or _is_corruption(exc):
        return _damaged(path, found, f"reading it failed: {exc}")
    return _Checked(cells.one_line(f"cannot read LUT {path}: {exc}", 300))


def _damaged(path: Path, found: str, what: str) -> InputError:
    return _Checked(f"LUT {path} is damaged (quick_check: {cells.one_line(found, 200)}); "
                    f"{cells.one_line(what, 200)}")


def _damaged_or(conn: sqlite3.Connection, path: Path, error: InputError) -> InputError:
    """``error`` (a bad cell, a missing table), unless ``quick_check`` finds the file damaged."""
    if isinstance(error, _Checked):
        return error
    ran, found = _quick_check(conn)
    return _damaged(path, found, str(error)) if ran and found != "ok" else error


def _select(conn: sqlite3.Connection, path: Path, sql: str,
            params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.DatabaseError as exc:
        raise _read_failure(conn, path, exc) from None


# -- opening -------------------------------------------------------------------------------
def _check_file(path: Path) -> None:
    """Refuse anything that is not an SQLite file before SQLite touches it."""
    if path.is_dir():
        raise InputError(f"LUT path {path} is a directory")
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise InputError(f"cannot read LUT {path}: {exc.strerror}") from None
    if head and head != _SQLITE_MAGIC:
        raise InputError(f"{path} is not a perfstudent LUT (not an SQLite file)")


def _probe(conn: sqlite3.Connection) -> None:
    """The first read: SQLite opens the file (and a WAL file's index) only here."""
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()


def _sqlite(target: str, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, timeout=30, isolation_level=None, uri=uri)
    conn.text_factory = cells.text_factory
    return conn


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened with ``mode=ro`` (``immutable`` where the WAL index cannot be made)."""
    uri = f"{path.absolute().as_uri()}?mode=ro"
    try:
        conn = _sqlite(uri, uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"cannot open LUT {path}: {exc}") from None
    try:
        _probe(conn)
        return conn
    except sqlite3.DatabaseError as exc:
        if not _is_read_only(exc):
            failure = _read_failure(conn, path, exc)
            conn.close()
            raise failure from None
        conn.close()
        first = exc
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise InputError(f"cannot read LUT {path}: its write-ahead log {wal.name} holds data SQLite "
                         f"can only read with write access to {path.parent} ({first})")
    conn = _sqlite(f"{uri}&immutable=1", uri=True)
    try:
        _probe(conn)
    except sqlite3.DatabaseError as exc:
        failure = _read_failure(conn, path, exc)
        conn.close()
        raise failure from None
    return conn


def _connect(path: Path, create: bool, readonly: bool) -> tuple[sqlite3.Connection, bool]:
    """The connection and whether it was opened read-only."""
    exists = path.exists()
    if exists:
        _check_file(path)
    elif not create or readonly:
        raise InputError(f"no LUT at {path}; fill one with `perfstudent profile --lut {path} ...`")
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create LUT directory {path.parent}: {exc.strerror}") from None
        if not os.access(path.parent, os.W_OK):
            raise InputError(f"cannot write a LUT in {path.parent}: permission denied")
    if readonly:
        return _connect_read_only(path), True
    try:
        conn = _sqlite(str(path))
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise InputError(f"cannot open LUT {path}: {exc}") from None
    try:
        _probe(conn)
    except sqlite3.DatabaseError as exc:
        if exists and _is_read_only(exc):  # it can still be read; a write will say why it cannot
            conn.close()
            return _connect_read_only(path), True
        failure = _read_failure(conn, path, exc)
        conn.close()
        raise failure from None
    return conn, False


class LatencyTable:
    """Rows (fingerprint, Chain) -> Measurement, plus per-fingerprint overheads."""

    def __init__(self, conn: sqlite3.Connection, path: Path, readonly: bool = False,
                 read_only_why: str = "it was opened for reading") -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly
        self._read_only_why = read_only_why

    @classmethod
    def open(cls, path: Path | str | None = None, create: bool = True,
             readonly: bool | None = None) -> LatencyTable:
        """Open (or, with ``create``, start) the LUT at ``path`` (None: :func:`default_lut_path`).

        ``readonly`` (default: ``not create``) opens the file read-only: reading needs
        read permission only, and every write fails. ``create=False, readonly=False``
        opens an existing LUT to write in it (``lut validate`` storing residuals).
        """
        path = default_lut_path() if path is None else Path(path)
        asked = (not create) if readonly is None else readonly
        conn, opened_read_only = _connect(path, create, asked)
        try:
            _ensure_schema(conn, path, opened_read_only)
        except InputError as exc:
            error = _damaged_or(conn, path, exc)
            conn.close()
            raise error from None
        except BaseException:
            conn.close()
            raise
        why = ("it was opened for reading" if asked else
               f"no write permission to it or to {path.parent}, or a read-only file system")
        return cls(conn, path, opened_read_only, why)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> LatencyTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading, checked -------------------------------------------------------------------
    def _select(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return _select(self.conn, self.path, sql, params)

    def _cell(self, table: str, rowid: Any, what: str, parse: Callable[[Any], T], cell: Any,
              label: str = "") -> T:
        """``parse(cell)``, or an InputError naming the file, the table, the row and ``what``."""
        try:
            return parse(cell)
        except cells.BAD_CELL as exc:
            detail = cells.one_line(str(exc) or type(exc).__name__, 160)
            where = f"row {rowid}" + (f" ({cells.one_line(label, 160)})" if label else "")
            error = InputError(f"LUT {self.path}: table {table}, {where}: bad {what} ({detail})")
        raise _damaged_or(self.conn, self.path, error)

    def _row_chain(self, rowid: Any, cell: Any) -> Chain:
        return self._cell("rows", rowid, "chain key", cells.chain, cell, f"chain {cells.snippet(cell)}")

    # -- fingerprints ---------------------------------------------------------------
    def add_fingerprint(self, fp: Fingerprint) -> str:
        self._write("INSERT OR IGNORE INTO fingerprints VALUES (?, ?, ?)", (fp.id, fp.canonical(), now()))
        return fp.id

    def fingerprints(self) -> list[Fingerprint]:
        rows = self._select("SELECT rowid, id, data FROM fingerprints ORDER BY created, id")
        return [self._cell("fingerprints", rowid, "fingerprint", partial(cells.fingerprint, fid), data,
                           f"id {cells.snippet(fid)}")
                for rowid, fid, data in rows]

    def count(self, fp: Fingerprint) -> int:
        return int(self._select("SELECT COUNT(*) FROM rows WHERE fingerprint = ?", (fp.id,))[0][0])

    # -- rows ---------------------------------------------------------------------
    def add(self, fp: Fingerprint, chain: Chain, measurement: Measurement) -> None:
        """Commit one row (replacing an earlier measurement of the same chain)."""
        self.add_fingerprint(fp)
        self._write("INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?, ?)",
                    (fp.id, chain.key(), measurement.ms, json.dumps(measurement.to_dict()), now()))

    def has(self, fp: Fingerprint, chain: Chain) -> bool:
        return bool(self._select("SELECT 1 FROM rows WHERE fingerprint = ? AND chain = ?",
                                 (fp.id, chain.key())))

    def keys(self, fp: Fingerprint) -> set[str]:
        return {r[0] for r in self._select("SELECT chain FROM rows WHERE fingerprint = ?", (fp.id,))}

    def rows(self, fp: Fingerprint) -> dict[Chain, Measurement]:
        out = {}
        for rowid, key, data in self._select("SELECT rowid, chain, measurement FROM rows "
                                             "WHERE fingerprint = ? ORDER BY rowid", (fp.id,)):
            chain = self._row_chain(rowid, key)
            out[chain] = self._cell("rows", rowid, "measurement", cells.measurement, data,
                                    f"chain {chain.label()}")
        return out

    # -- overheads and sweeps -----------------------------------------------------
    def set_overhead(self, fp: Fingerprint, context: dict[str, Any], overhead_ms: float,
                     data: dict[str, Any]) -> None:
        self.add_fingerprint(fp)
        self._write("INSERT OR REPLACE INTO overheads VALUES (?, ?, ?, ?, ?)",
                    (fp.id, _canon(context), overhead_ms, json.dumps(data), now()))

    def overheads(self, fp: Fingerprint) -> dict[str, tuple[float, dict[str, Any]]]:
        out = {}
        for rowid, ctx, ms, data in self._select("SELECT rowid, context, overhead_ms, data FROM overheads "
                                                 "WHERE fingerprint = ? ORDER BY rowid", (fp.id,)):
            out[self._overhead_context(rowid, ctx)] = self._overhead(rowid, ctx, ms, data)
        return out

    def _overhead_context(self, rowid: Any, ctx: Any) -> str:
        self._cell("overheads", rowid, "context", cells.json_object, ctx, f"context {cells.snippet(ctx)}")
        return cells.as_text(ctx)

    def _overhead(self, rowid: Any, ctx: Any, ms: Any, data: Any) -> tuple[float, dict[str, Any]]:
        label = f"context {cells.snippet(ctx)}"
        return (self._cell("overheads", rowid, "overhead_ms", cells.finite, ms, label),
                self._cell("overheads", rowid, "data", cells.overhead_data, data, label))

    def record_sweep(self, fp: Fingerprint, context: dict[str, Any], mode: str, shapes: int) -> None:
        self._write("INSERT OR REPLACE INTO sweeps VALUES (?, ?, ?, ?, ?)",
                    (fp.id, _canon(context), mode, shapes, now()))

    def add_validation(self, fp: Fingerprint, context: dict[str, Any], data: dict[str, Any]) -> None:
        """Keep one ``lut validate`` result (its residuals feed ``plan --margin auto``)."""
        self.add_fingerprint(fp)
        self._write("INSERT OR REPLACE INTO validations VALUES (?, ?, ?, ?)",
                    (fp.id, _canon(context), datetime.now(timezone.utc).isoformat(), json.dumps(data)))

    def validations(self, fp: Fingerprint, context: dict[str, Any]) -> list[dict[str, Any]]:
        """The validations of ``fp`` in ``context``, oldest first."""
        found = self._select("SELECT rowid, created, data FROM validations WHERE fingerprint = ? "
                             "AND context = ? ORDER BY created", (fp.id, _canon(context)))
        return [self._cell("validations", rowid, "data", cells.validation_data, data,
                           f"created {cells.snippet(created)}")
                for rowid, created, data in found]

    def sweeps(self, fp: Fingerprint) -> list[dict[str, Any]]:
        out = []
        for rowid, ctx, mode, shapes, at in self._select(
                "SELECT rowid, context, mode, shapes, completed_at FROM sweeps WHERE fingerprint = ? "
                "ORDER BY rowid", (fp.id,)):
            label = f"context {cells.snippet(ctx)}"
            out.append(self._cell("sweeps", rowid, "context", cells.sweep_context, ctx, label)
                       | {"mode": self._cell("sweeps", rowid, "mode", cells.text, mode, label),
                          "shapes": self._cell("sweeps", rowid, "shapes", cells.integer, shapes, label),
                          "completed_at": self._cell("sweeps", rowid, "completed_at", cells.text, at, label)})
        return out

    # -- everything, for merge and export ---------------------------------------------
    def entries(self) -> list[Entry]:
        """Every row, then every overhead term, checked (what ``lut merge`` copies; :data:`Entry`)."""
        fps = {fp.id: fp for fp in self.fingerprints()}

        def owner(table: str, rowid: Any, fid: Any, label: str) -> Fingerprint:
            if fid not in fps:
                raise _damaged_or(self.conn, self.path, InputError(
                    f"LUT {self.path}: table {table}, row {rowid} ({label}): bad fingerprint (no "
                    f"fingerprint {cells.snippet(fid)} in table fingerprints)"))
            return fps[fid]

        out: list[Entry] = []
        for rowid, fid, key, ms, data, at in self._select(
                "SELECT rowid, fingerprint, chain, ms, measurement, measured_at FROM rows ORDER BY rowid"):
            chain = self._row_chain(rowid, key)
            label = f"chain {chain.label()}"
            fp = owner("rows", rowid, fid, label)
            self._cell("rows", rowid, "measurement", cells.measurement, data, label)
            out.append(("chain", fp, chain.key(), self._cell("rows", rowid, "ms", cells.finite, ms, label),
                        cells.as_text(data), self._cell("rows", rowid, "measured_at", cells.text, at, label)))
        for rowid, fid, ctx, ms, data, at in self._select(
                "SELECT rowid, fingerprint, context, overhead_ms, data, measured_at FROM overheads "
                "ORDER BY rowid"):
            key = self._overhead_context(rowid, ctx)
            label = f"context {cells.snippet(ctx)}"
            fp = owner("overheads", rowid, fid, label)
            median, _ = self._overhead(rowid, ctx, ms, data)
            out.append(("overhead", fp, key, median, cells.as_text(data),
                        self._cell("overheads", rowid, "measured_at", cells.text, at, label)))
        return out

    def stored(self, kind: str, fp: Fingerprint, key: str) -> Any | None:
        """The parsed JSON of the row (``kind`` chain) or overhead term at ``key``; None if none."""
        tbl, col, data = (("rows", "chain", "measurement") if kind == "chain"
                          else ("overheads", "context", "data"))
        found = self._select(f"SELECT rowid, {data} FROM {tbl} WHERE fingerprint = ? AND {col} = ?",
                             (fp.id, key))
        if not found:
            return None
        rowid, cell = found[0]
        return self._cell(tbl, rowid, data, cells.json_cell, cell, f"{col} {cells.snippet(key)}")

    # -- views --------------------------------------------------------------------
    def view(self, fp: Fingerprint) -> LatencyView:
        """The rows of exactly ``fp`` (InputError naming what differs if the LUT has none)."""

        known = self.fingerprints()
        if not any(k.id == fp.id for k in known):
            raise InputError(_missing_fingerprint_message(self.path, fp, known))
        return LatencyView(fp, self.rows(fp), self.overheads(fp))

    # -- writing ------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; an SQLite failure is an InputError (``cannot write LUT ...``)."""
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                yield self.conn
        except sqlite3.Error as exc:
            raise self._write_failure(exc) from None

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self.transaction() as conn:
            conn.execute(sql, params)

    def _write_failure(self, exc: sqlite3.Error) -> InputError:
        if self.readonly:
            return InputError(f"cannot write LUT {self.path}: it is open read-only ({self._read_only_why})")
        if _is_read_only(exc):
            return InputError(f"cannot write LUT {self.path}: {exc} (no write permission to it or to "
                              f"{self.path.parent}, or a read-only file system)")
        if _is_corruption(exc):
            return _read_failure(self.conn, self.path, exc)
        return InputError(cells.one_line(f"cannot write LUT {self.path}: {exc}", 400))


def _canon(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _missing_fingerprint_message(path: Path, fp: Fingerprint, known: list[Fingerprint]) -> str:
    if not known:
        return (f"LUT {path} is empty; fill it with `perfstudent profile --device {fp.device} "
                f"--backend {fp.backend} --threads {fp.threads} --lut {path} --family FAMILY`")
    closest = min(known, key=lambda k: len(fp.differences(k)))
    diff = "; ".join(closest.differences(fp)[:4])
    return (f"LUT {path} holds rows of another fingerprint than asked ({diff}); measure this one "
            f"with `perfstudent profile --device {fp.device} --backend {fp.backend} "
            f"--threads {fp.threads} --lut {path} --family FAMILY`")


def _ensure_schema(conn: sqlite3.Connection, path: Path, readonly: bool) -> None:
    names = {r[0] for r in _select(conn, path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not names:
        if readonly:
            raise InputError(f"LUT {path} is an empty file; fill it with `perfstudent profile "
                             f"--lut {path} ...`")
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                for stmt in _DDL.strip().split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA,))
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            raise InputError(f"cannot create LUT {path}: {exc}") from None
        return
    if "meta" not in names:
        raise InputError(f"{path} is not a perfstudent LUT (no meta table)")
    found = _select(conn, path, "SELECT value FROM meta WHERE key = 'schema'")
    schema = found[0][0] if found else None
    if schema != SCHEMA:
        shown = cells.snippet(schema) if schema is not None else "none"
        hint = (" (rows of single layers timed alone, the old format); profile again into a new "
                "LUT" if schema == "perfstudent.lut/1" else "")
        raise InputError(f"LUT {path} has schema {shown}; this perfstudent reads {SCHEMA}{hint}")
    missing = [t for t in TABLES if t not in names]
    if missing:
        raise InputError(f"{path} is not a perfstudent LUT (missing tables: {', '.join(missing)})")
