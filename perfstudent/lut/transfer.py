"""Moving latency tables between machines: export (Parquet/CSV), import, merge.

One flat table, one line per LUT row (``kind = chain``) or overhead term
(``kind = overhead``): ``fingerprint_id``, ``fingerprint`` (JSON), ``key`` (the
Chain key or overhead context, JSON), ``ms``, ``measurement`` (the full
Measurement with its raw samples, or the overhead data, JSON), ``measured_at``,
plus readable columns for analysis (the block's kind, input channels, size,
stride, slot width and full width, whether it was timed alone). Import refuses
rows that collide with different values unless told which side wins; identical
duplicates are skipped.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError
from perfstudent.io import atomic_write_bytes
from perfstudent.lut.fingerprint import Fingerprint
from perfstudent.lut.store import LatencyTable, now
from perfstudent.measurement import Measurement

if TYPE_CHECKING:
    import pandas as pd

    from perfstudent.lut.store import LatencyTable

COLUMNS = ["kind", "fingerprint_id", "fingerprint", "key", "ms", "measurement", "measured_at"]
SHAPE_COLUMNS = ["block", "cin", "cout", "size", "stride", "width", "full", "alone"]
CONFLICT_POLICIES = ("error", "keep", "replace")


def table_frame(table: LatencyTable) -> pd.DataFrame:
    """Every row and overhead term of ``table`` as one DataFrame (see the module docstring)."""
    import pandas as pd

    records: list[dict[str, Any]] = []
    fps = {fp.id: fp.canonical() for fp in table.fingerprints()}
    for fid, key, ms, data, at in table.conn.execute(
            "SELECT fingerprint, chain, ms, measurement, measured_at FROM rows ORDER BY rowid"):
        records.append({"kind": "chain", "fingerprint_id": fid, "fingerprint": fps[fid], "key": key,
                        "ms": ms, "measurement": data, "measured_at": at} | _readable(key))
    for fid, ctx, ms, data, at in table.conn.execute(
            "SELECT fingerprint, context, overhead_ms, data, measured_at FROM overheads"):
        records.append({"kind": "overhead", "fingerprint_id": fid, "fingerprint": fps[fid],
                        "key": ctx, "ms": ms, "measurement": data, "measured_at": at})
    frame = pd.DataFrame.from_records(records, columns=COLUMNS + SHAPE_COLUMNS)
    return frame.astype({c: "object" for c in SHAPE_COLUMNS})


def _readable(key: str) -> dict[str, Any]:
    chain = Chain.from_dict(json.loads(key))
    first, last = chain.block.layers[0], chain.block.layers[-1]
    return {"block": chain.block.kind, "cin": first.cin, "cout": last.cout, "size": first.height,
            "stride": first.stride, "width": chain.block.width, "full": chain.block.full,
            "alone": chain.alone}


def export_table(table: LatencyTable, out: Path, fmt: str) -> int:
    """Write ``table`` to ``out`` as ``parquet`` or ``csv`` (atomically); returns the line count."""
    import io

    frame = table_frame(table)
    buffer = io.BytesIO()
    if fmt == "parquet":
        try:
            frame.to_parquet(buffer, index=False)
        except ImportError as exc:
            raise InputError(f"Parquet export needs pyarrow ({exc}); use --format csv") from None
    elif fmt == "csv":
        buffer.write(frame.to_csv(index=False).encode())
    else:
        raise InputError(f"unknown export format {fmt!r}; use parquet or csv")
    atomic_write_bytes(Path(out), buffer.getvalue())
    return len(frame)


def read_frame(path: Path) -> pd.DataFrame:
    """Read an exported table (format from the suffix: .parquet or .csv)."""
    import pandas as pd

    if not Path(path).is_file():
        raise InputError(f"no such file: {path}")
    try:
        if Path(path).suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # any parser failure is bad input
        raise InputError(f"cannot read {path} as an exported LUT: {exc}") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path} is not an exported LUT (missing columns: {', '.join(missing)})")
    return frame


@dataclass
class ImportReport:
    added: int = 0
    identical: int = 0
    replaced: int = 0
    kept: int = 0

    def __str__(self) -> str:
        return (f"{self.added} added, {self.identical} identical skipped, "
                f"{self.replaced} replaced, {self.kept} conflicting kept")


def _parse(line: dict[str, Any]) -> tuple[str, Fingerprint, str, float, str, str]:
    kind = str(line["kind"])
    if kind not in ("chain", "overhead"):
        raise InputError(f"unknown row kind {kind!r} in import")
    try:
        fp = Fingerprint.from_dict(json.loads(line["fingerprint"]))
        key, data = str(line["key"]), str(line["measurement"])
        json.loads(data)
        if kind == "chain":
            key = Chain.from_dict(json.loads(key)).key()
            Measurement.from_dict(json.loads(data))
        median = float(line["ms"])
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"bad line in import: {exc}") from None
    if fp.id != str(line["fingerprint_id"]):
        raise InputError(f"fingerprint id {line['fingerprint_id']} does not match its record")
    return kind, fp, key, median, data, str(line["measured_at"])


def import_frame(table: LatencyTable, frame: pd.DataFrame, on_conflict: str = "error") -> ImportReport:
    """Add ``frame``'s lines to ``table`` in ONE transaction (nothing written on refusal)."""
    if on_conflict not in CONFLICT_POLICIES:
        raise InputError(f"on_conflict must be one of {', '.join(CONFLICT_POLICIES)}")
    lines = [_parse(rec) for rec in frame[COLUMNS].to_dict("records")]
    report, conflicts, writes = ImportReport(), [], []
    for kind, fp, key, median, data, at in lines:
        tbl, col = ("rows", "chain") if kind == "chain" else ("overheads", "context")
        old = table.conn.execute(f"SELECT {'measurement' if kind == 'chain' else 'data'} FROM {tbl} "
                                 f"WHERE fingerprint = ? AND {col} = ?", (fp.id, key)).fetchone()
        if old is not None and json.loads(old[0]) == json.loads(data):
            report.identical += 1
            continue
        if old is not None:
            conflicts.append((fp, key))
            if on_conflict == "keep":
                report.kept += 1
                continue
            report.replaced += 1
        else:
            report.added += 1
        writes.append((tbl, fp, key, median, data, at))
    if conflicts and on_conflict == "error":
        fp, key = conflicts[0]
        raise InputError(f"{len(conflicts)} imported rows conflict with different measurements already "
                         f"in {table.path} (first: {fp.label()} {key}); nothing was imported; pass "
                         f"--on-conflict keep or --on-conflict replace")
    _write_all(table, writes)
    return report


def _write_all(table: LatencyTable, writes: list[tuple[str, Fingerprint, str, float, str, str]]) -> None:
    try:
        with table.conn:
            table.conn.execute("BEGIN IMMEDIATE")
            for tbl, fp, key, median, data, at in writes:
                table.conn.execute("INSERT OR IGNORE INTO fingerprints VALUES (?, ?, ?)",
                                   (fp.id, fp.canonical(), now()))
                table.conn.execute(f"INSERT OR REPLACE INTO {tbl} VALUES (?, ?, ?, ?, ?)",
                                   (fp.id, key, median, data, at))
    except sqlite3.Error as exc:
        raise InputError(f"cannot write LUT {table.path}: {exc}") from None


def merge_tables(table: LatencyTable, other_path: Path, on_conflict: str = "error") -> ImportReport:
    """Merge the LUT file ``other_path`` into ``table``."""

    if Path(other_path).resolve() == Path(table.path).resolve():
        raise InputError("cannot merge a LUT into itself")
    with LatencyTable.open(other_path, create=False) as other:
        frame = table_frame(other)
    return import_frame(table, frame, on_conflict)
