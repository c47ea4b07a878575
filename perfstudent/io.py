"""Small file helpers: writes that never leave a half-written file behind."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from perfstudent.errors import InputError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename).

    A crash leaves either the old file or the new one, never a mix.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_text(path: Path, what: str = "file", error: type[InputError] = InputError) -> str:
    """Read a text file; every failure becomes one clear ``error`` naming ``what``."""
    path = Path(path)
    try:
        return path.read_text()
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None


#: Deepest nesting of lists and tables accepted in a JSON or TOML file (no file of ours has 10).
MAX_DEPTH = 32


def _depth(data: Any) -> int:
    """Nesting depth of lists and dicts, without recursion (the data may be hostile)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def bounded(data: Any, where: str, error: type[InputError] = InputError) -> Any:
    """``data`` if it nests at most :data:`MAX_DEPTH` deep, else one clear ``error``."""
    if _depth(data) > MAX_DEPTH:
        raise error(f"{where} nests deeper than {MAX_DEPTH} levels")
    return data


def parse_json(text: str, where: str, error: type[InputError] = InputError) -> Any:
    """JSON ``text``; malformed or too deeply nested input becomes one ``error`` naming ``where``."""
    try:
        return bounded(json.loads(text), where, error)
    except json.JSONDecodeError as exc:
        raise error(f"{where} is not valid JSON: {exc}") from None
    except RecursionError:
        raise error(f"{where} nests deeper than {MAX_DEPTH} levels") from None


def parse_toml(text: str, where: str, error: type[InputError] = InputError) -> dict[str, Any]:
    """TOML ``text``; malformed or too deeply nested input becomes one ``error`` naming ``where``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        return bounded(tomllib.loads(text), where, error)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where}: not valid TOML ({exc})") from None
    except RecursionError:
        raise error(f"{where} nests deeper than {MAX_DEPTH} levels") from None


def read_json(path: Path, what: str = "file") -> Any:
    """Read a JSON file; every failure becomes one clear :class:`InputError`."""
    return parse_json(read_text(path, what), f"{what} {path}")
