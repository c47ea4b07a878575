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
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError
from perfstudent.io import atomic_write_bytes
from perfstudent.lut import cells
from perfstudent.lut.fingerprint import Fingerprint
from perfstudent.lut.store import Entry, LatencyTable, default_lut_path, now

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["kind", "fingerprint_id", "fingerprint", "key", "ms", "measurement", "measured_at"]
SHAPE_COLUMNS = ["block", "cin", "cout", "size", "stride", "width", "full", "alone"]
CONFLICT_POLICIES = ("error", "keep", "replace")


def table_frame(table: LatencyTable) -> pd.DataFrame:
    """Every row and overhead term of ``table`` as one DataFrame (see the module docstring).

    Every cell is checked first (:meth:`LatencyTable.entries`): a bad one is an
    InputError naming the table and the row, and nothing is written.
    """
    import pandas as pd

    records: list[dict[str, Any]] = []
    for kind, fp, key, ms, data, at in table.entries():
        records.append({"kind": kind, "fingerprint_id": fp.id, "fingerprint": fp.canonical(),
                        "key": key, "ms": ms, "measurement": data, "measured_at": at}
                       | (_readable(key) if kind == "chain" else {}))
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


def _parse(line: dict[str, Any]) -> Entry:
    """One line of an export, checked as reading a LUT checks its cells (:mod:`perfstudent.lut.cells`),
    so an import cannot write what a reader would refuse."""
    kind = str(line["kind"])
    if kind not in ("chain", "overhead"):
        raise InputError(f"unknown row kind {cells.snippet(kind)}")
    try:
        fp = cells.fingerprint(str(line["fingerprint_id"]), line["fingerprint"])
        data = cells.as_text(line["measurement"])
        if kind == "chain":
            key = cells.chain(line["key"]).key()
            cells.measurement(data)
        else:
            key = cells.as_text(line["key"])
            cells.json_object(key)
            cells.overhead_data(data)
        median = float(line["ms"])
        if not math.isfinite(median):
            raise ValueError(f"ms is not a finite number: {line['ms']!r}")
    except cells.BAD_CELL as exc:
        raise InputError(f"bad line ({cells.one_line(exc, 160)})") from None
    return kind, fp, key, median, data, str(line["measured_at"])


def parse_frame(frame: pd.DataFrame, source: Path | str | None = None) -> list[Entry]:
    """The lines of an exported table, each checked (an InputError names ``source`` and the line)."""
    entries = []
    for i, rec in enumerate(frame[COLUMNS].to_dict("records")):
        try:
            entries.append(_parse(rec))
        except InputError as exc:
            raise InputError(f"{source or 'import'}: record {i + 1}: {exc}; nothing was imported") from None
    return entries


def import_frame(table: LatencyTable, frame: pd.DataFrame, on_conflict: str = "error",
                 source: Path | str | None = None) -> ImportReport:
    """Add ``frame``'s lines to ``table`` in ONE transaction (nothing written on refusal)."""
    return import_entries(table, parse_frame(frame, source), on_conflict)


def import_entries(table: LatencyTable, entries: list[Entry], on_conflict: str = "error") -> ImportReport:
    """Add checked ``entries`` to ``table`` in ONE transaction (nothing written on refusal)."""
    if on_conflict not in CONFLICT_POLICIES:
        raise InputError(f"on_conflict must be one of {', '.join(CONFLICT_POLICIES)}")
    report, conflicts, writes = ImportReport(), [], []
    for kind, fp, key, median, data, at in entries:
        old = table.stored(kind, fp, key)
        if old is not None and old == json.loads(data):
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
        writes.append(("rows" if kind == "chain" else "overheads", fp, key, median, data, at))
    if conflicts and on_conflict == "error":
        fp, key = conflicts[0]
        raise InputError(f"{len(conflicts)} imported rows conflict with different measurements already "
                         f"in {table.path} (first: {fp.label()} {key}); nothing was imported; pass "
                         f"--on-conflict keep or --on-conflict replace")
    _write_all(table, writes)
    return report


def _write_all(table: LatencyTable, writes: list[tuple[str, Fingerprint, str, float, str, str]]) -> None:
    with table.transaction() as conn:
        for tbl, fp, key, median, data, at in writes:
            conn.execute("INSERT OR IGNORE INTO fingerprints VALUES (?, ?, ?)",
                         (fp.id, fp.canonical(), now()))
            conn.execute(f"INSERT OR REPLACE INTO {tbl} VALUES (?, ?, ?, ?, ?)",
                         (fp.id, key, median, data, at))


def read_lut(path: Path, into: Path | None = None) -> list[Entry]:
    """Every row and overhead term of the LUT file ``path``, read only and checked.

    ``into``, the LUT they will be merged into, must be another file. A damaged
    file or a bad cell is an InputError before anything is written anywhere.
    """
    if into is not None and Path(path).resolve() == Path(into).resolve():
        raise InputError("cannot merge a LUT into itself")
    with LatencyTable.open(path, create=False) as other:
        return other.entries()


def merge_tables(table: LatencyTable, other_path: Path, on_conflict: str = "error") -> ImportReport:
    """Merge the LUT file ``other_path`` into ``table``."""
    return import_entries(table, read_lut(other_path, into=table.path), on_conflict)


def merge_files(other_path: Path, lut_path: Path | None, on_conflict: str = "error") -> ImportReport:
    """Merge the LUT file ``other_path`` into the one at ``lut_path`` (None: the default).

    ``other_path`` is read and checked before the target is opened, so a bad
    source leaves the target as it was (and creates none).
    """
    target = default_lut_path() if lut_path is None else Path(lut_path)
    entries = read_lut(other_path, into=target)
    with LatencyTable.open(target) as table:
        return import_entries(table, entries, on_conflict)
