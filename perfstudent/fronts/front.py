"""``perfstudent front``: runs -> CSV + front figure + staircase figure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfstudent.errors import InputError
from perfstudent.fronts.collect import collect_points, fingerprint_of, latency_key
from perfstudent.fronts.plot import plot_front, plot_staircase
from perfstudent.fronts.staircase import pick_slot, plan_choices, plans_of_runs, slot_staircase
from perfstudent.fronts.table import aggregate
from perfstudent.io import atomic_write_text
from perfstudent.lut import LatencyTable
from perfstudent.students import WidthSpec, full_spec

if TYPE_CHECKING:
    import pandas as pd

    from perfstudent.measurement import TimingProtocol


@dataclass
class FrontResult:
    """What :func:`make_front` wrote and the tables behind it."""

    points: pd.DataFrame
    table: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _outputs(out: Path) -> tuple[Path, Path, Path]:
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"--out must end in .png or .svg, got {out.name}")
    csv = out.with_suffix(".csv")
    stair = out.with_name(out.stem + "-staircase.png")
    return out, csv, stair


def make_front(run_paths: list[Path], out: Path, *, device: str = "local",
               backend: str = "onnxruntime", threads: int = 1, lut: Path | None = None,
               measure: bool = True, staircase: bool = True, slot: str | None = None,
               progress: bool = True, protocol: TimingProtocol | None = None) -> FrontResult:
    """Collect ``run_paths``, measure missing latencies, write the front and its CSV.

    Files: ``out`` as PNG and SVG, ``out`` with ``.csv`` (one row per run) and
    ``-summary.csv`` (one row per configuration), and ``<out>-staircase.png/svg``
    when a LUT for the device/backend/threads is available and runs carry plans.
    """
    out, csv, stair_out = _outputs(out)
    points = collect_points(run_paths, device, backend, threads, measure=measure,
                            protocol=protocol, progress=progress)
    table = aggregate(points)
    result = FrontResult(points, table)
    atomic_write_text(csv, points.to_csv(index=False))
    summary_csv = csv.with_name(csv.stem + "-summary.csv")
    atomic_write_text(summary_csv, table.to_csv(index=False))
    key = latency_key(device, backend, threads)
    datas = sorted({str(d) for d in points["data"] if d})
    title = f"{', '.join(datas) or 'runs'}: accuracy vs measured latency ({key})"
    xlabel = f"measured latency (ms, median), {device} / {backend} / {threads} thread(s)"
    result.files += [csv, summary_csv, *plot_front(points, table, out, title=title, xlabel=xlabel)]
    if staircase:
        series = list(points["series"])
        plans = plans_of_runs([Path(p) for p in points["run"]], series)
        note = _staircase(plans, stair_out, device, backend, threads, lut, slot, result)
        if note:
            result.notes.append(note)
    return result


def _base_spec(plans: list[tuple[str, dict[str, Any]]]) -> Any:
    spec = WidthSpec.from_dict(plans[0][1])
    return full_spec(spec.family, spec.input_size, spec.in_channels, spec.num_classes)


def _staircase(plans: list[tuple[str, dict[str, Any]]], out: Path, device: str, backend: str,
               threads: int, lut: Path | None, slot: str | None,
               result: FrontResult) -> str | None:
    """Draw the staircase figure; a one-line note instead when it cannot be drawn."""
    if not plans:
        return "staircase skipped: no run carries a plan.json"
    base = _base_spec(plans)
    families = {plan.get("spec", {}).get("family") for _, plan in plans}
    if len(families) > 1:
        return f"staircase skipped: plans of several families ({', '.join(map(str, families))})"
    chosen = slot or pick_slot(base, plans)
    if chosen not in base.widths:
        raise InputError(f"unknown slot {chosen!r} for {base.family}; "
                         f"slots: {', '.join(base.widths)}")

    table = LatencyTable.open(lut)
    try:
        view = table.view(fingerprint_of(device, backend, threads))
        stair = slot_staircase(base, chosen, view.slot_ms)
    except InputError as exc:
        return f"staircase skipped: {exc}"
    finally:
        table.close()
    title = (f"{base.family} slot {chosen}: LUT latency staircase "
             f"({latency_key(device, backend, threads)})")
    result.files += plot_staircase(stair, plan_choices(plans, chosen), out, title=title)
    return None
