"""Versioned records: one serialiser and one rule for every JSON file users see.

A record is a dataclass (frozen or plain) that subclasses :class:`Record` and
names its format ``SCHEMA = "perfstudent.NAME/VERSION"``; a sub-record that
lives only inside another one (a plan's per-slot rows) leaves ``SCHEMA`` empty.

Writing (:meth:`Record.to_dict`): ``{"schema": SCHEMA, **DERIVED, **fields}``.
Nested records become dicts, tuples lists, paths strings. ``DERIVED`` names
properties or methods written for readers (a measurement's ``ms``); they are
computed again, never read back.

Reading (:meth:`Record.from_dict`), the one rule:

1. the schema's NAME must be this record's, else an error naming both;
2. a NEWER version is refused ("written by a newer perfstudent");
3. the data of every version this code reads, older or current, passes through
   ``migrate(data, version)``, which returns it in the current shape. The default
   takes the current version as it is and refuses older ones; a class that reads
   an old version (or files written under the current version before this rule
   was strict) says so in its own ``migrate``;
4. unknown keys are refused, and so are missing required ones, naming them;
5. every value is built from its field's type: records (alone, or in lists, tuples
   and dicts) from their dicts, paths from strings, ``int``/``float``/``str``/``bool``
   checked, ``X | None`` allows null; anything else (``Any``, wider unions) as it is.

Errors are ``ERROR`` (an :class:`InputError`, or a subclass such as SpecError).
:meth:`Record.load` and :meth:`Record.save` go through :mod:`perfstudent.io`
(atomic writes; a read error names the file).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

from perfstudent.errors import InputError
from perfstudent.io import atomic_write_text, parse_json, read_text

R = TypeVar("R", bound="Record")
_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def parse_schema(schema: Any) -> tuple[str, int] | None:
    """``"perfstudent.plan/1"`` -> ``("perfstudent.plan", 1)``; None if not of that form."""
    name, _, version = schema.rpartition("/") if isinstance(schema, str) else ("", "", "")
    return (name, int(version)) if name and version.isdigit() else None


def _plain(value: Any) -> Any:
    """``value`` as JSON data (the serialiser's one recursion)."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def _build(tp: Any, value: Any, where: str, error: type[InputError]) -> Any:
    """``value`` (JSON data) as the field type ``tp`` (rule 5)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        return _build(rest[0], value, where, error) if len(rest) == 1 else value
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_dict(value, where)
    if dict in (tp, origin):
        if not isinstance(value, dict):
            raise error(f"{where} must be an object, got {value!r}")
        return {k: _build(args[1] if args else Any, v, f"{where}.{k}", error) for k, v in value.items()}
    if list in (tp, origin) or tuple in (tp, origin):  # list[X], tuple[X, ...]
        if not isinstance(value, (list, tuple)):
            raise error(f"{where} must be a list, got {value!r}")
        built = [_build(args[0] if args else Any, v, f"{where}[{i}]", error) for i, v in enumerate(value)]
        return tuple(built) if tuple in (tp, origin) else built
    if tp is Path:
        if not isinstance(value, str):
            raise error(f"{where} must be a path (a string), got {value!r}")
        return Path(value)
    if tp in _KINDS:
        accepted = (int, float) if tp is float else tp
        if not isinstance(value, accepted) or (isinstance(value, bool) and tp is not bool):
            raise error(f"{where} must be {_KINDS[tp]}, got {value!r}")
        return float(value) if tp is float else value
    return value


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


class Record:
    """Base of the dataclasses that are files (module docstring: the one rule)."""

    SCHEMA: ClassVar[str] = ""
    ERROR: ClassVar[type[InputError]] = InputError
    DERIVED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def what(cls) -> str:
        """What the files are called in messages: ``plan file``, ``saliency file``."""
        name = parse_schema(cls.SCHEMA)
        return f"{name[0].rpartition('.')[2]} file" if name else cls.__name__

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """``data`` of ``version`` in the current shape (rule 3); refuses what it cannot read."""
        current = parse_schema(cls.SCHEMA)
        if current and version < current[1]:
            raise cls.ERROR(f"{current[0]}/{version} is an old format this perfstudent no longer "
                            f"reads (it reads {cls.SCHEMA})")
        return data

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": self.SCHEMA} if self.SCHEMA else {}
        for name in self.DERIVED:
            value = getattr(self, name)
            out[name] = _plain(value() if callable(value) else value)
        for f in dataclasses.fields(cast(Any, self)):
            out[f.name] = _plain(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls: type[R], data: Any, where: str = "") -> R:
        """The record ``data`` holds (rules 1-5); ``where`` names it inside another record."""
        label = where or cls.what()
        if not isinstance(data, dict):
            raise cls.ERROR(f"{where} must be a JSON object, got {data!r}" if where else
                            f"not a {label}: expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        if cls.SCHEMA:
            data = cls._versioned(data, label)
        for name in cls.DERIVED:
            data.pop(name, None)
        types_ = _field_types(cast(Any, cls))
        unknown = [k for k in data if k not in types_]
        if unknown:
            raise cls.ERROR(f"{label} has unknown keys: {', '.join(map(str, unknown))}")
        missing = [f.name for f in dataclasses.fields(cast(Any, cls)) if f.init and f.name not in data
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise cls.ERROR(f"malformed {label}: missing {', '.join(missing)}")
        values = {k: _build(types_[k], v, f"{where}.{k}" if where else k, cls.ERROR)
                  for k, v in data.items()}
        try:
            return cast(Any, cls)(**values)
        except (TypeError, ValueError) as exc:
            raise cls.ERROR(f"malformed {label}: {exc}") from None

    @classmethod
    def _versioned(cls, data: dict[str, Any], label: str) -> dict[str, Any]:
        """Rules 1-3: check ``data["schema"]`` against SCHEMA; migrate; drop the key."""
        found = data.pop("schema", None)
        parsed, (name, version) = parse_schema(found), cast(tuple[str, int], parse_schema(cls.SCHEMA))
        if parsed is None or parsed[0] != name:
            what = "it has no schema" if found is None else f"its schema is {found!r}"
            raise cls.ERROR(f"not a {label}: {what}, expected {cls.SCHEMA!r}")
        if parsed[1] > version:
            raise cls.ERROR(f"written by a newer perfstudent: {found}, this one reads {cls.SCHEMA}")
        return cls.migrate(data, parsed[1])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls: type[R], text: str) -> R:
        return cls.from_dict(parse_json(text, "the file", cls.ERROR))

    @classmethod
    def load(cls: type[R], path: str | Path) -> R:
        """The record in the JSON file ``path``; every failure an ERROR naming the file."""
        path = Path(path)
        text = read_text(path, cls.what(), cls.ERROR)
        try:
            return cls.from_json(text)
        except InputError as exc:
            raise cls.ERROR(f"{path}: {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write the record to ``path`` as JSON, atomically."""
        atomic_write_text(Path(path), self.to_json())
