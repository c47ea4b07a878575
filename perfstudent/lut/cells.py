"""What a good LUT cell is: each parser takes one cell as SQLite gives it and returns its value.

A parser raises one of :data:`BAD_CELL` on a bad cell (garbage text, JSON of
the wrong shape, a number that is text, bytes that are not UTF-8);
:class:`~perfstudent.lut.store.LatencyTable` turns that into one
:class:`~perfstudent.errors.InputError` naming the file, the table and the row.
"""

from __future__ import annotations

import functools
import json
import math
import types
import typing
from dataclasses import fields
from typing import Any

from perfstudent.blockshape import Chain
from perfstudent.errors import InputError
from perfstudent.lut.fingerprint import Fingerprint
from perfstudent.measurement import Measurement


class NotText(bytes):
    """A TEXT cell whose bytes are not UTF-8 (what :func:`text_factory` gives instead of failing)."""


def text_factory(raw: bytes) -> str | bytes:
    """SQLite TEXT as ``str``; bytes that are not UTF-8 as :class:`NotText`, for the parser to refuse.

    (Python's own conversion raises while fetching, for the whole query, naming no row.)
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return NotText(raw)  # refused by every parser below


def one_line(text: object, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def snippet(value: Any, limit: int = 48) -> str:
    """A cell as it reads in a message: short, one line."""
    return one_line(value if isinstance(value, str) else repr(value), limit)


#: What parsing a bad cell can raise (a JSON or UTF-8 error is a ValueError).
BAD_CELL = (InputError, ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError,
            OverflowError)


def as_text(cell: Any) -> str:
    """A JSON cell's text: ``str``, or bytes (a BLOB, or TEXT that is not UTF-8) that decode as UTF-8."""
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell).decode("utf-8")
    if not isinstance(cell, str):
        raise ValueError(f"not text but {type(cell).__name__} {one_line(repr(cell), 60)}")
    return cell


def json_cell(cell: Any) -> Any:
    """The JSON a cell holds."""
    return json.loads(as_text(cell))


def json_object(cell: Any) -> dict[str, Any]:
    """The JSON object a cell holds."""
    data = json_cell(cell)
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object: {one_line(repr(data), 60)}")
    return data


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite(value: Any) -> float:
    """A number cell (or JSON value) that is finite."""
    if not is_number(value) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {one_line(repr(value), 60)}")
    return float(value)


def text(value: Any) -> str:
    """A plain text cell."""
    if not isinstance(value, str):
        raise ValueError(f"not text: {one_line(repr(value), 60)}")
    return value


def integer(value: Any) -> int:
    """An integer cell (or JSON value)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"not an integer: {one_line(repr(value), 60)}")
    return value


def chain(cell: Any) -> Chain:
    """A row's chain key."""
    return Chain.from_dict(json_cell(cell))


def measurement(cell: Any) -> Measurement:
    """A row's measurement, with every raw sample."""
    return Measurement.from_dict(json_cell(cell))


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is dict or origin is dict:
        return isinstance(value, dict)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp) if isinstance(tp, type) else True


@functools.cache
def _fingerprint_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Fingerprint)
    return {f.name: hints[f.name] for f in fields(Fingerprint)}


def fingerprint(stored_id: Any, cell: Any) -> Fingerprint:
    """The fingerprint of the ``fingerprints`` row ``stored_id``: every field of its type, its id the
    hash of its data (what the rows of that id were measured with)."""
    fp = Fingerprint.from_dict(json_object(cell))
    for name, tp in _fingerprint_types().items():
        value = getattr(fp, name)
        if not _type_ok(value, tp):
            raise ValueError(f"{name} has the wrong type: {one_line(repr(value), 60)}")
    alignment = fp.settings.get("width_alignment")
    if alignment is not None and (not isinstance(alignment, int) or isinstance(alignment, bool)):
        raise ValueError(f"width_alignment must be an integer, got {one_line(repr(alignment), 60)}")
    if fp.id != stored_id:
        raise ValueError(f"its id {stored_id!r} is not the hash of its data ({fp.id})")
    return fp


def overhead_data(cell: Any) -> dict[str, Any]:
    data = json_object(cell)
    if "scale" in data:
        finite(data["scale"])
    share = data.get("share_of_full")
    if share is not None and not is_number(share):
        raise ValueError(f"share_of_full is not a number: {one_line(repr(share), 60)}")
    return data


def validation_data(cell: Any) -> dict[str, Any]:
    data = json_object(cell)
    residuals = data.get("residuals", [])
    if not isinstance(residuals, list) or not all(is_number(r) for r in residuals):
        raise ValueError("residuals is not a list of numbers")
    kinds = data.get("kinds")
    if kinds is not None and (not isinstance(kinds, list) or len(kinds) != len(residuals)
                              or not all(isinstance(k, str) for k in kinds)):
        raise ValueError("kinds is not a list of strings, one per residual")
    students = data.get("students")
    if students is not None and (not isinstance(students, list) or len(students) != len(residuals)
                                 or not all(isinstance(st, dict) and is_number(st.get("measured_ms"))
                                            and isinstance(st.get("widths"), dict) for st in students)):
        raise ValueError("students is not a list of {widths, measured_ms}, one per residual")
    return data


def sweep_context(cell: Any) -> dict[str, Any]:
    data = json_object(cell)
    text(data.get("family"))
    integer(data.get("input_size"))
    for name in ("in_channels", "num_classes", "batch"):
        if data.get(name) is not None:
            integer(data[name])
    return data
