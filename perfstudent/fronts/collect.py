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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfstudent.distill.runs import load_run
from perfstudent.errors import InputError
from perfstudent.io import read_json
from perfstudent.lut import Fingerprint
from perfstudent.plan.strategies import strategy_names
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.profiler.measure import measure_spec

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


Measurer = Callable[[Any, str, str, int], dict[str, Any]]


def measure_run(run: Any, device: str, backend: str, threads: int,
                protocol: TimingProtocol | None = None) -> dict[str, Any]:
    """Measure ``run``'s trained network end to end; a ``Measurement`` dict + ``fingerprint``."""

    measurement = measure_spec(run.spec, device=device, backend=backend, threads=threads,
                               model=run.model("best"), protocol=protocol)
    entry = measurement.to_dict()
    entry["fingerprint"] = fingerprint_of(device, backend, threads).to_dict()
    return entry


def fingerprint_of(device: str, backend: str, threads: int) -> Fingerprint:
    """The fingerprint of the measuring backend, as stored in LUTs."""
    instance = get_backend(backend, get_device(device), threads)
    try:
        return Fingerprint.for_backend(instance)
    finally:
        instance.close()


def ensure_latency(run: Any, device: str, backend: str, threads: int, *, measure: bool = True,
                   measurer: Measurer | None = None) -> tuple[dict[str, Any], bool]:
    """The run's stored latency entry for the key, measuring and storing it if absent.

    Returns ``(entry, measured_now)``. With ``measure=False`` a missing entry
    is an :class:`InputError` naming the command that fills it.
    """
    key = latency_key(device, backend, threads)
    stored = dict(run.summary.latency)
    if key in stored:
        return stored[key], False
    if not measure:
        raise InputError(f"run {run.path} has no latency for {key}; run "
                         f"`perfstudent front {run.path} --device {device} --backend {backend} "
                         f"--threads {threads}` (without --no-measure) to measure it")
    entry = (measurer or measure_run)(run, device, backend, threads)
    stored[key] = entry
    run.update_summary(latency=stored)
    return entry, True


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
                   progress: bool = True, measurer: Measurer | None = None) -> pd.DataFrame:
    """One row per run (:class:`RunPoint` fields), measuring missing latencies.

    Raises :class:`InputError` for a path that is not a valid run directory.
    """
    import pandas as pd
    from tqdm import tqdm


    if not run_paths:
        raise InputError("no run directories given")
    runs = [load_run(Path(p)) for p in run_paths]
    rows = []
    bar = tqdm(runs, desc="runs", unit="run", disable=not progress, leave=False)
    for run in bar:
        bar.set_postfix_str(Path(run.path).name)
        entry, now = ensure_latency(run, device, backend, threads, measure=measure,
                                    measurer=measurer)
        rows.append(asdict(run_point(run, entry, now)))
    frame = pd.DataFrame(rows)
    frame["acc_pct"] = 100.0 * frame["acc"]
    return frame


def is_finite(value: Any) -> bool:
    """``True`` for a real, finite number (``None``/``nan`` are not)."""
    return isinstance(value, (int, float)) and math.isfinite(value)
