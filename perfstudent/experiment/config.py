"""The experiment configuration (TOML), validated strictly.

Every section and key is declared below; anything else, a wrong type or a
value out of range is an :class:`InputError` naming the file, the section and
the key (with a suggestion for a misspelt key), which the CLI turns into exit
code 2. Relative paths are relative to the TOML file's directory.

Budgets (``[experiment] budgets``) are either absolute durations with a unit
(``"3ms"``, ``"2500us"``, ``"0.004s"``) or plain numbers in ``(0, 1]``: a
fraction of the *full* network's predicted latency on the experiment's LUT
(``0.5`` = half the teacher architecture's predicted latency). A bare number
above 1 is refused (it would be ambiguous).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfstudent.errors import InputError
from perfstudent.io import parse_toml, read_text
from perfstudent.plan.strategies import default_strategy_names, strategy_names

STRATEGIES = tuple(strategy_names())
#: Compared when a config names none: the strategies that need no optional extra.
DEFAULT_STRATEGIES = tuple(default_strategy_names())


class ConfigError(InputError):
    """A malformed experiment configuration."""


Check = Callable[[Any], str | None]  # None if valid, else what it must be


def _int(lo: int = 0) -> Check:
    return lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= lo \
        else f"an integer >= {lo}"


def _float(lo: float = 0.0, strict: bool = False) -> Check:
    def check(v: Any) -> str | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ok = ok and (v > lo if strict else v >= lo)
        return None if ok else f"a number {'>' if strict else '>='} {lo}"
    return check


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) and v else "a non-empty string"


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _choice(*options: str) -> Check:
    return lambda v: None if v in options else f"one of {', '.join(map(repr, options))}"


def _list(item: Check, unique: bool = True) -> Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, list) or not v:
            return "a non-empty list"
        for x in v:
            problem = item(x)
            if problem:
                return f"a non-empty list of {problem}s (bad item {x!r})"
        if unique and len({repr(x) for x in v}) != len(v):
            return "a list without duplicates"
        return None
    return check


def _budget(v: Any) -> str | None:
    if isinstance(v, str):
        from perfstudent.durations import parse_duration_ms

        try:
            parse_duration_ms(v, "budget")
        except InputError:
            return 'a duration with a unit ("3ms") or a fraction in (0, 1]'
        return None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1
    return None if ok else 'a duration with a unit ("3ms") or a fraction in (0, 1]'


#: section -> key -> (check, default); ``...`` marks a required key.
SCHEMA: dict[str, dict[str, tuple[Check, Any]]] = {
    "experiment": {"name": (_str, "experiment"), "out": (_str, None),
                   "budgets": (_list(_budget), ...),
                   "strategies": (_list(_choice(*STRATEGIES)), list(DEFAULT_STRATEGIES)),
                   "seeds": (_list(_int(0)), [0])},
    "device": {"name": (_str, "local"), "backend": (_str, "onnxruntime"), "threads": (_int(1), 1),
               "lut": (_str, None), "protocol": (_choice("default", "fast", "careful"), "default")},
    "profile": {"exhaustive": (_bool, False), "tolerance": (_float(0.0), 0.02),
                "coarse_points": (_int(1), 4)},
    "model": {"family": (_str, "resnet20")},
    "data": {"dataset": (_str, "digits"), "data_dir": (_str, None), "train_limit": (_int(1), None),
             "test_limit": (_int(1), None)},
    "train": {"teacher": (_str, None), "epochs": (_int(1), 10), "batch_size": (_int(1), 128),
              "lr": (_float(0.0, strict=True), 0.1), "seed": (_int(0), 0), "threads": (_int(1), None)},
    "saliency": {"batches": (_int(1), 20), "batch_size": (_int(1), 64)},
    "distill": {"epochs": (_int(1), 10), "batch_size": (_int(1), 128),
                "lr": (_float(0.0, strict=True), 0.1), "beta": (_float(0.0), 1000.0),
                "kd": (_bool, False), "margin_ms": (_float(0.0), None), "threads": (_int(1), None)},
    "front": {"slot": (_str, None)},
}


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(options)})"


def _section(where: str, name: str, table: Any) -> dict[str, Any]:
    keys = SCHEMA[name]
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in keys:
            raise ConfigError(f"{where}: [{name}] unknown key {key!r}{_suggest(key, list(keys))}")
        problem = keys[key][0](value)
        if problem:
            raise ConfigError(f"{where}: [{name}] {key} must be {problem}, got {value!r}")
        out[key] = value
    for key, (_check, default) in keys.items():
        if key not in out:
            if default is ...:
                raise ConfigError(f"{where}: [{name}] missing required key {key!r}")
            out[key] = default
    return out


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated configuration: ``sections[section][key]`` plus where it came from."""

    sections: dict[str, dict[str, Any]]
    source: Path | None = None
    base_dir: Path = field(default_factory=Path.cwd)

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    def path(self, section: str, key: str) -> Path | None:
        """A path-valued key resolved against the config file's directory (None if unset)."""
        value = self.sections[section][key]
        return None if value is None else (self.base_dir / Path(value).expanduser())

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dict(values) for name, values in self.sections.items()}


def validate(data: Any, where: str = "config", base_dir: Path | None = None,
             source: Path | None = None) -> ExperimentConfig:
    """Check a parsed TOML document against :data:`SCHEMA`, filling defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the configuration must be a TOML table")
    for name in data:
        if name not in SCHEMA:
            raise ConfigError(f"{where}: unknown section [{name}]{_suggest(name, list(SCHEMA))}")
    if "experiment" not in data:
        raise ConfigError(f"{where}: missing section [experiment] (it needs at least budgets = [...])")
    sections = {name: _section(where, name, data.get(name, {})) for name in SCHEMA}
    if "pruned" in sections["experiment"]["strategies"] and sections["saliency"]["batches"] < 1:
        raise ConfigError(f"{where}: [saliency] batches must be >= 1 for the pruned strategy")
    return ExperimentConfig(sections, source, base_dir or Path.cwd())


def load_config(path: Path) -> ExperimentConfig:
    """Read and validate an experiment TOML file."""
    path = Path(path)
    text = read_text(path, "config", ConfigError)
    data = parse_toml(text, path.name, ConfigError)
    return validate(data, path.name, path.resolve().parent, path.resolve())


def from_dict(data: dict[str, Any], base_dir: Path) -> ExperimentConfig:
    """Validate an in-memory configuration (``quickstart``'s embedded defaults)."""
    return validate(data, "defaults", base_dir)
