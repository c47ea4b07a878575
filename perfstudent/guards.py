"""Output guards: what a command may write over, decided in one place.

Every command that writes calls :func:`check_output` (a file) or
:func:`check_output_dir` (a run or experiment directory) before it touches
anything. The rules:

1. never write over a file the same command reads (``--out`` equal to an input,
   also through a symlink or another spelling of the path);
2. never replace something of another *kind* (a LUT, a checkpoint, a run or an
   experiment directory, a perfstudent JSON file of another schema, a
   directory where a file goes) unless the user says ``--force``;
3. a file of the same kind is replaced (atomically, by :mod:`perfstudent.io`):
   writing a plan over an older plan is what ``--out plan.json`` means.

:func:`kind_of` tells the kind by content, not by name: an SQLite header is a
LUT, a zip or pickle header a checkpoint, a JSON object's ``schema`` names its
kind, a directory with ``state.json`` is an experiment and one with
``config.json`` a run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from perfstudent.errors import InputError

_SQLITE = b"SQLite format 3\x00"
_ZIP = b"PK\x03\x04"
_PICKLE = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def kind_of(path: Path) -> str | None:
    """What ``path`` holds: ``LUT``, ``checkpoint``, ``experiment directory``, ``run directory``,
    ``directory``, ``perfstudent.<name> file``, ``file``; None if it does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    if path.is_dir():
        if (path / "state.json").is_file():
            return "experiment directory"
        if (path / "config.json").is_file():
            return "run directory"
        return "directory"
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return "file"
    if head.startswith(_SQLITE):
        return "LUT"
    if head.startswith(_ZIP) or head.startswith(_PICKLE):
        return "checkpoint"
    return _json_kind(head) or "file"


def _json_kind(head: bytes) -> str | None:
    if not head.lstrip().startswith(b"{"):
        return None
    try:
        data = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None  # not JSON, or longer than the head: an ordinary file
    schema = data.get("schema") if isinstance(data, dict) else None
    if isinstance(schema, str) and schema.startswith("perfstudent."):
        return f"{schema.split('/')[0]} file"
    return None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def check_output(out: Path, kind: str, reads: Iterable[Path | None] = (), *,
                 force: bool = False, option: str = "--out") -> None:
    """Refuse ``out`` if it is an input of the command, or holds something of another kind.

    ``kind`` is what the command writes, as :func:`kind_of` names it (``perfstudent.plan file``,
    ``LUT``, ``file`` for a format it cannot recognise, such as ONNX or CSV).
    """
    out = Path(out)
    for source in reads:
        if source is not None and _same(out, Path(source)):
            raise InputError(f"{option} {out} is also an input of this command; write elsewhere")
    found = kind_of(out)
    if found is None:
        return
    if found.endswith("directory"):
        raise InputError(f"{option} {out} is a {found}; give a file path")
    if found in (kind, "file") or force:
        return  # the same kind, or an ordinary file of no known kind (CSV, ONNX, text)
    raise InputError(f"{option} {out} is a {found}; refusing to replace it with a {kind} "
                     f"(write elsewhere, or pass --force)")


def check_output_dir(out: Path, kind: str, *, option: str = "--out") -> None:
    """Refuse ``out`` for a run (``kind="run directory"``) or an experiment
    (``"experiment directory"``) if it holds the other kind of run, or is a file."""
    found = kind_of(Path(out))
    if found is None or found in (kind, "directory"):
        return
    if found.endswith("directory"):
        raise InputError(f"{option} {out} is a {found}, not a {kind}; write the {kind} elsewhere")
    raise InputError(f"{option} {out} is a {found}, not a directory")
