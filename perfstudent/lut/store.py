"""The latency table on disk: one SQLite file, schema-versioned, never pickled.

Tables: ``meta`` (schema), ``fingerprints`` (id -> JSON), ``rows``
((fingerprint, Chain.key()) -> Measurement JSON with every raw sample, the
figure in a column), ``overheads`` ((fingerprint, context) -> the overhead term
and the calibration networks it was fitted on), ``sweeps`` (which family and
input size was swept), ``validations`` (each ``lut validate``: its students'
residuals, read by ``plan --margin auto``). Every write is its own committed
transaction (WAL journal), so a killed sweep loses at most the rows in flight
and the file stays valid.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError
from perfstudent.lut.fingerprint import Fingerprint
from perfstudent.lut.view import LatencyView
from perfstudent.measurement import Measurement

if TYPE_CHECKING:
    from perfstudent.lut.view import LatencyView

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


def default_lut_path() -> Path:
    """``$PERFSTUDENT_LUT``, else ``<user data dir>/perfstudent/lut.sqlite``."""
    env = os.environ.get("PERFSTUDENT_LUT")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("perfstudent")) / "lut.sqlite"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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


def _connect(path: Path, create: bool) -> sqlite3.Connection:
    exists = path.exists()
    if exists:
        _check_file(path)
    elif not create:
        raise InputError(f"no LUT at {path}; fill one with `perfstudent profile --lut {path} ...`")
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create LUT directory {path.parent}: {exc.strerror}") from None
        if not os.access(path.parent, os.W_OK):
            raise InputError(f"cannot write a LUT in {path.parent}: permission denied")
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        return conn
    except sqlite3.Error as exc:
        raise InputError(f"cannot open LUT {path}: {exc}") from None


class LatencyTable:
    """Rows (fingerprint, ConvShape) -> Measurement, plus per-fingerprint overheads."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path | str | None = None, create: bool = True) -> LatencyTable:
        """Open (or, with ``create``, start) the LUT at ``path`` (None: :func:`default_lut_path`)."""
        path = default_lut_path() if path is None else Path(path)
        conn = _connect(path, create)
        try:
            _ensure_schema(conn, path)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> LatencyTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fingerprints ---------------------------------------------------------------
    def add_fingerprint(self, fp: Fingerprint) -> str:
        self._write("INSERT OR IGNORE INTO fingerprints VALUES (?, ?, ?)", (fp.id, fp.canonical(), now()))
        return fp.id

    def fingerprints(self) -> list[Fingerprint]:
        rows = self.conn.execute("SELECT data FROM fingerprints ORDER BY created, id").fetchall()
        return [Fingerprint.from_dict(json.loads(r[0])) for r in rows]

    def count(self, fp: Fingerprint) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM rows WHERE fingerprint = ?",
                                     (fp.id,)).fetchone()[0])

    # -- rows ---------------------------------------------------------------------
    def add(self, fp: Fingerprint, chain: Chain, measurement: Measurement) -> None:
        """Commit one row (replacing an earlier measurement of the same chain)."""
        self.add_fingerprint(fp)
        self._write("INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?, ?)",
                    (fp.id, chain.key(), measurement.ms, json.dumps(measurement.to_dict()), now()))

    def has(self, fp: Fingerprint, chain: Chain) -> bool:
        return self.conn.execute("SELECT 1 FROM rows WHERE fingerprint = ? AND chain = ?",
                                 (fp.id, chain.key())).fetchone() is not None

    def keys(self, fp: Fingerprint) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT chain FROM rows WHERE fingerprint = ?", (fp.id,))}

    def rows(self, fp: Fingerprint) -> dict[Chain, Measurement]:
        cur = self.conn.execute("SELECT chain, measurement FROM rows WHERE fingerprint = ?", (fp.id,))
        return {Chain.from_dict(json.loads(c)): Measurement.from_dict(json.loads(m)) for c, m in cur}

    # -- overheads and sweeps -----------------------------------------------------
    def set_overhead(self, fp: Fingerprint, context: dict[str, Any], overhead_ms: float,
                     data: dict[str, Any]) -> None:
        self.add_fingerprint(fp)
        self._write("INSERT OR REPLACE INTO overheads VALUES (?, ?, ?, ?, ?)",
                    (fp.id, _canon(context), overhead_ms, json.dumps(data), now()))

    def overheads(self, fp: Fingerprint) -> dict[str, tuple[float, dict[str, Any]]]:
        cur = self.conn.execute("SELECT context, overhead_ms, data FROM overheads WHERE fingerprint = ?",
                                (fp.id,))
        return {c: (float(v), json.loads(d)) for c, v, d in cur}

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
        cur = self.conn.execute("SELECT data FROM validations WHERE fingerprint = ? AND context = ? "
                                "ORDER BY created", (fp.id, _canon(context)))
        return [json.loads(d) for (d,) in cur]

    def sweeps(self, fp: Fingerprint) -> list[dict[str, Any]]:
        cur = self.conn.execute("SELECT context, mode, shapes, completed_at FROM sweeps "
                                "WHERE fingerprint = ?", (fp.id,))
        return [json.loads(c) | {"mode": m, "shapes": n, "completed_at": t} for c, m, n, t in cur]

    # -- views --------------------------------------------------------------------
    def view(self, fp: Fingerprint) -> LatencyView:
        """The rows of exactly ``fp`` (InputError naming what differs if the LUT has none)."""

        known = self.fingerprints()
        if not any(k.id == fp.id for k in known):
            raise InputError(_missing_fingerprint_message(self.path, fp, known))
        return LatencyView(fp, self.rows(fp), self.overheads(fp))

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise InputError(f"cannot write LUT {self.path}: {exc}") from None


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


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path} is not a perfstudent LUT ({exc})") from None
    if not names:
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
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is None or row[0] != SCHEMA:
        found = row[0] if row else "none"
        hint = (" (rows of single layers timed alone, the old format); profile again into a new "
                "LUT" if found == "perfstudent.lut/1" else "")
        raise InputError(f"LUT {path} has schema {found}; this perfstudent reads {SCHEMA}{hint}")
    missing = [t for t in TABLES if t not in names]
    if missing:
        raise InputError(f"{path} is not a perfstudent LUT (missing tables: {', '.join(missing)})")
