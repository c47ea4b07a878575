"""Run directories: what ``train`` and ``distill`` write, and how to read it back.

(docs/design.md, files users see.)

::

    RUN/config.json    resolved arguments (TrainConfig) + schema
    RUN/metrics.csv    one row per completed epoch: epoch,train_loss,train_acc,test_loss,test_acc,lr,seconds
    RUN/last.pt        resumable checkpoint (model, optimizer, schedule, RNG states, history)
    RUN/best.pt        model state dict of the epoch with the best test accuracy
    RUN/plan.json      copy of the plan the student came from (distill --plan)
    RUN/summary.json   {"schema": "perfstudent.run/1", "kind", "spec", "strategy", "data", ...}

Every file is written atomically, so a killed run leaves a consistent directory.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import nn

from perfstudent.distill.checkpoint import load_checkpoint
from perfstudent.errors import InputError
from perfstudent.guards import check_output_dir
from perfstudent.io import atomic_write_text, read_json, write_json
from perfstudent.records import Record
from perfstudent.students import WidthSpec, build

SUMMARY_SCHEMA = "perfstudent.run/1"
METRIC_FIELDS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")
RUN_FILES = ("config.json", "metrics.csv", "last.pt", "best.pt", "plan.json", "summary.json")


@dataclass(frozen=True)
class RunSummary(Record):
    """``summary.json`` (``perfstudent.run/1``): what a run is and how far it got.

    Accuracies are fractions. ``latency`` maps ``device/backend/tN`` to a measurement
    of the trained network there (a Measurement's dict plus its ``fingerprint``;
    runs measured before Measurement kept its samples have ``median_ms``), filled by
    ``perfstudent front``.
    """

    SCHEMA = SUMMARY_SCHEMA

    kind: str
    spec: WidthSpec
    strategy: str | None = None
    data: str | None = None
    seed: int | None = None
    epochs: int | None = None
    epochs_done: int = 0
    finished: bool = False
    final_test_acc: float | None = None
    best_test_acc: float | None = None
    best_epoch: int | None = None
    params: int | None = None
    macs: int | None = None
    teacher: str | None = None
    teacher_test_acc: float | None = None
    beta: float | None = None
    kd: bool | None = None
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def what(cls) -> str:
        return "run summary"


@dataclass
class Run:
    """A run directory read back: its spec, config and summary, and its models."""

    path: Path
    spec: WidthSpec
    config: dict[str, Any]
    summary: RunSummary

    def model(self, which: str = "best") -> nn.Module:
        """The network with the weights of ``best.pt`` or ``last.pt`` (loaded with weights_only=True)."""
        if which not in ("best", "last"):
            raise InputError(f"which must be 'best' or 'last', got {which!r}")
        ckpt = load_checkpoint(self.path / f"{which}.pt", f"{which} checkpoint of run")
        model = build(self.spec)
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(f"{self.path / (which + '.pt')} does not fit {self.spec.family}: "
                             f"{first}") from None
        return model.eval()

    def metrics(self) -> list[dict[str, float]]:
        """The rows of ``metrics.csv`` (empty if none yet)."""
        path = self.path / "metrics.csv"
        if not path.is_file():
            return []
        rows = csv.DictReader(io.StringIO(path.read_text()))
        return [{k: float(v) for k, v in row.items()} for row in rows]

    def update_summary(self, **fields: Any) -> None:
        """Merge ``fields`` into ``summary.json`` (atomic; e.g. ``latency={...}`` after measuring)."""
        current = RunSummary.load(self.path / "summary.json")
        merged: dict[str, Any] = {}
        for key, value in fields.items():
            old = getattr(current, key)
            merged[key] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
        self.summary = replace(current, **merged)
        self.summary.save(self.path / "summary.json")


def load_run(path: Path | str) -> Run:
    """Read a run directory; :class:`InputError` unless it has a valid summary and spec."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"run directory not found: {path}")
    if not (path / "summary.json").is_file():
        raise InputError(f"{path} is not a perfstudent run directory (no summary.json)")
    summary = RunSummary.load(path / "summary.json")
    config = read_json(path / "config.json", "run config") if (path / "config.json").is_file() else {}
    return Run(path, summary.spec, config if isinstance(config, dict) else {}, summary)


def write_metrics(path: Path, history: list[dict[str, float]]) -> None:
    """Rewrite ``metrics.csv`` from the checkpoint's history (so each epoch appears exactly once)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(METRIC_FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (int(row[k]) if k == "epoch" else f"{row[k]:.6g}") for k in METRIC_FIELDS})
    atomic_write_text(path / "metrics.csv", out.getvalue())


def prepare_run_dir(path: Path, config: dict[str, Any], *, resume: bool, force: bool) -> bool:
    """Check and claim ``path`` for a run; return True if there is a checkpoint to resume from.

    - new or empty directory: claimed (config.json written);
    - ``resume``: must exist and hold a config.json with the same settings (same epochs and
      seed); a missing or empty directory has nothing to resume and is refused;
    - ``force``: perfstudent's own files in it are removed (nothing else is touched);
    - otherwise an existing non-empty directory is refused.
    Raises before touching anything if the directory cannot be used.
    """
    if path.exists() and not path.is_dir():
        raise InputError(f"output {path} exists and is not a directory")
    check_output_dir(path, "run directory")  # e.g. an experiment directory: never a run's
    if resume:
        check_something_to_resume(path)
    existing = path.is_dir() and any(path.iterdir())
    if existing and resume:
        _check_resumable(path, config)
        return (path / "last.pt").is_file()
    if existing and not force:
        what = "a run directory" if (path / "config.json").is_file() else "not empty"
        raise InputError(f"output {path} is {what}; pass --resume to continue it or --force to overwrite")
    if existing:
        for name in RUN_FILES:
            (path / name).unlink(missing_ok=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create run directory {path}: {exc.strerror or exc}") from None
    write_json(path / "config.json", config)
    return False


def check_something_to_resume(path: Path) -> None:
    """InputError unless ``path`` is a non-empty directory (``--resume`` never starts a new run)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"nothing to resume: {path} does not exist (drop --resume to start a new run)")
    if not path.is_dir():
        raise InputError(f"nothing to resume: {path} is not a run directory")
    if not any(path.iterdir()):
        raise InputError(f"nothing to resume: {path} is empty (drop --resume to start a new run)")


_RESUME_FREE = {"resume", "force", "progress", "stop_after", "threads", "out", "device_type"}


def _check_resumable(path: Path, config: dict[str, Any]) -> None:
    if not (path / "config.json").is_file():
        raise InputError(f"cannot resume {path}: it has no config.json (not a run directory)")
    old = read_json(path / "config.json", "run config")
    if not isinstance(old, dict):
        raise InputError(f"cannot resume {path}: config.json is not an object")
    if "arch" in old and "family" not in old:  # runs written before the key was renamed
        old["family"] = old.pop("arch")
    changed = sorted(k for k in set(old) | set(config)
                     if k not in _RESUME_FREE and old.get(k) != config.get(k))
    if changed:
        raise InputError(f"cannot resume {path}: settings differ from the original run "
                         f"({', '.join(changed)})")
