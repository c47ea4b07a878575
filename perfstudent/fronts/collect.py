"""Collect runs into accuracy-latency points, measuring what is not yet measured.

One point per run directory: its final test accuracy (``summary.json``
``final_test_acc``, a fraction) against its latency measured end to end on a
device (``summary.json`` ``latency["<device>/<backend>/t<threads>"]``, the
median in ms). A run without that key is measured now through
:func:`perfstudent.profiler.measure.measure_spec` and the measurement stored
back into the run (``run.update_summary``, atomic), so the next front is free.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfstudent.distill.runs import load_run
from perfstudent.errors import InputError
from perfstudent.io import read_json
from perfstudent.lut import Fingerprint
from perfstudent.plan.strategies import strategy_names
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.resources import check_memory
from perfstudent.students.memory import memory_bytes

if TYPE_CHECKING:
    import pandas as pd

    from perfstudent.measurement import TimingProtocol

#: Series names in drawing order; runs of any other kind get their own series.
STRATEGIES = tuple(strategy_names())
TEACHER = "teacher"


def latency_key(device: str, backend: str, threads: int) -> str:
    """The key of a run's ``summary.json`` ``latency`` entry: ``local/onnxruntime/t1``."""
    return f"{device}/{backend}/t{threads}"


@dataclass(frozen=True)
class RunPoint:
    """One run on the accuracy-latency plane (latencies in ms, accuracy a fraction)."""

    run: str
    series: str
    kind: str
    strategy: str | None
    seed: int | None
    data: str | None
    family: str
    budget_ms: float | None
    predicted_ms: float | None
    acc: float
    latency_ms: float
    spread: float
    noisy: bool
    measured_now: bool


def series_of(kind: str | None, strategy: str | None) -> str:
    """perf / pruned / uniform for planned students, ``teacher`` for a plain trained run.

    A run trained from scratch on a plan (kind ``train`` with a strategy) is
    ``<strategy> (no AT)``; a distilled run without a plan is ``student``.
    """
    if strategy:
        return str(strategy) if kind == "distill" else f"{strategy} (no AT)"
    return TEACHER if kind == "train" else "student"


def _plan_of(run_path: Path) -> dict[str, Any]:
    path = run_path / "plan.json"
    if not path.exists():
        return {}
    plan = read_json(path, "plan")
    return plan if isinstance(plan, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def measure_together(run_paths: Sequence[Path], device: str, backend: str, threads: int,
                     protocol: TimingProtocol | None = None) -> list[dict[str, Any]]:
    """Measure the runs' trained networks together and store each entry (replacing old ones).

    One backend prepares every network once and times them all in interleaved rounds
    (``Backend.measure``): a slow phase of a shared machine (seconds to minutes here) then
    hits every run alike instead of the few measured during it, so the runs' ratios hold
    even where absolute times drift. Each entry records how many runs shared the
    measurement (``measured_together``), when it started (``measured_at``, UTC) and the
    1-minute load average before and after (``load_before``, ``load_after``). Nothing is
    stored unless every run was measured.
    """

    from perfstudent.measurement import TimingProtocol

    runs = [load_run(Path(p)) for p in run_paths]
    if not runs:
        raise InputError("no run directories given")
    # every network is held at once, each with its own buffers: refuse before building any
    check_memory(sum(memory_bytes(run.spec) for run in runs), f"measuring {len(runs)} runs together")
    instance = get_backend(backend, get_device(device), threads)
    try:
        fingerprint = Fingerprint.for_backend(instance).to_dict()
        items = [instance.prepare_model(run.spec, run.model("best")) for run in runs]
        when, load_before = datetime.now(timezone.utc).isoformat(timespec="seconds"), _load()
        measured = instance.measure(items, protocol or TimingProtocol())
    finally:
        instance.close()
    # when and under what load: a latency figure means little without them
    conditions = {"measured_at": when, "load_before": load_before, "load_after": _load()}
    key, entries = latency_key(device, backend, threads), []
    for run, measurement in zip(runs, measured, strict=True):
        entry = dict(measurement.to_dict(), fingerprint=fingerprint, measured_together=len(runs),
                     **conditions)
        run.update_summary(latency=dict(run.summary.latency, **{key: entry}))
        entries.append(entry)
    return entries


def _load() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def fingerprint_of(device: str, backend: str, threads: int) -> Fingerprint:
    """The fingerprint of the measuring backend, as stored in LUTs."""
    instance = get_backend(backend, get_device(device), threads)
    try:
        return Fingerprint.for_backend(instance)
    finally:
        instance.close()


def missing_latency(run: Any, device: str, backend: str, threads: int) -> InputError:
    """The error for a run without a latency for the key, naming the command that fills it."""
    return InputError(f"run {run.path} has no latency for {latency_key(device, backend, threads)}; "
                      f"run `perfstudent front {run.path} --device {device} --backend {backend} "
                      f"--threads {threads}` (without --no-measure) to measure it")


def run_point(run: Any, entry: dict[str, Any], measured_now: bool) -> RunPoint:
    """The :class:`RunPoint` of a loaded run and its latency entry."""
    summary = run.summary
    plan = _plan_of(Path(run.path))
    acc = summary.final_test_acc
    if acc is None:
        raise InputError(f"run {run.path}: summary.json has no final_test_acc")
    ms = float(entry["ms"] if "ms" in entry else entry["median_ms"])  # median_ms: older runs
    return RunPoint(
        run=str(run.path), series=series_of(summary.kind, summary.strategy), kind=summary.kind,
        strategy=summary.strategy or None, seed=summary.seed, data=summary.data,
        family=run.spec.family,
        budget_ms=_number(plan.get("budget_ms")), predicted_ms=_number(plan.get("predicted_ms")),
        acc=acc, latency_ms=ms, spread=float(entry.get("spread", 0.0)),
        noisy=bool(entry.get("noisy", False)), measured_now=measured_now,
    )


def collect_points(run_paths: Sequence[Path], device: str = "local",
                   backend: str = "onnxruntime", threads: int = 1, *, measure: bool = True,
                   protocol: TimingProtocol | None = None, progress: bool = True) -> pd.DataFrame:
    """One row per run (:class:`RunPoint` fields); the runs without a stored latency for the
    key are measured now, all together (:func:`measure_together`), and stored back.

    Raises :class:`InputError` for a path that is not a valid run directory, and for a
    missing latency with ``measure=False``.
    """
    import pandas as pd

    if not run_paths:
        raise InputError("no run directories given")
    key = latency_key(device, backend, threads)
    runs = [load_run(Path(p)) for p in run_paths]
    missing = [run for run in runs if key not in run.summary.latency]
    if missing and not measure:
        raise missing_latency(missing[0], device, backend, threads)
    if missing and progress:
        print(f"measuring {len(missing)} run(s) together on {key}", file=sys.stderr)
    fresh: dict[str, dict[str, Any]] = {}
    if missing:  # the entries just stored: no run is read twice
        entries = measure_together([Path(r.path) for r in missing], device, backend, threads,
                                   protocol)
        fresh = {str(r.path): e for r, e in zip(missing, entries, strict=True)}
    rows = [asdict(run_point(run, fresh.get(str(run.path)) or run.summary.latency[key],
                             str(run.path) in fresh)) for run in runs]
    frame = pd.DataFrame(rows)
    frame["acc_pct"] = 100.0 * frame["acc"]
    return frame


def is_finite(value: Any) -> bool:
    """``True`` for a real, finite number (``None``/``nan`` are not)."""
    return isinstance(value, (int, float)) and math.isfinite(value)
