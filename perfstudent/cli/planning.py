"""Planning commands: ``saliency`` (Fisher scores of a teacher) and ``plan`` (widths for a budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from perfstudent.cli._root import cli
from perfstudent.cli.profiler import parse_options
from perfstudent.errors import PerfStudentError


@cli.command()
@click.option("--teacher", type=click.Path(path_type=Path), required=True,
              help="Teacher run directory (from perfstudent train).")
@click.option("--data", required=True, help="Dataset the teacher was trained on, e.g. digits.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Dataset cache directory.")
@click.option("--batches", type=click.IntRange(min=1), default=100, show_default=True,
              help="Training batches to accumulate over.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Shuffling seed.")
@click.option("--train-mode/--eval-mode", default=False, show_default=True,
              help="Run the teacher in train mode (BN batch statistics) as pytorch-prunes does.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output saliency JSON.")
def saliency(teacher: Path, data: str, data_dir: Path | None, batches: int, batch_size: int,
             seed: int, train_mode: bool, out: Path) -> None:
    """Fisher saliency of every prunable channel of a teacher.

    Δ_c = 1/(2N) Σ_n (Σ_hw a·g)² on each slot's post-BN-ReLU activation,
    with g the gradient of the cross-entropy on N training samples.

    \b
    Example:
      perfstudent saliency --teacher runs/teacher --data digits --batches 20 --out sal.json
    """
    try:
        from perfstudent.students.saliency import compute_saliency

        result = compute_saliency(teacher, data, batches=batches, batch_size=batch_size,
                                  data_dir=data_dir, seed=seed, train_mode=train_mode)
    except ImportError as exc:
        raise PerfStudentError(f"saliency needs the training module, which is missing: {exc}") from None
    result.save(out)
    click.echo(f"Fisher saliency of {result.family} ({len(result.slots)} slots) over "
               f"{result.samples} samples in {result.batches} batches ({result.mode} mode)")
    for slot, scores in result.slots.items():
        ranked = sorted(scores, reverse=True)
        click.echo(f"  {slot:<12} {len(scores):>4} channels  max {ranked[0]:.3g}  "
                   f"median {ranked[len(ranked) // 2]:.3g}  min {ranked[-1]:.3g}")
    click.echo(f"wrote {out}")


def open_view(lut: Path | None, device: str, backend: str, threads: int, **options: Any) -> Any:
    """The latency view of (device, backend, threads, options) in the LUT at ``lut``."""
    return open_view_and_residuals(lut, device, backend, threads, None, **options)[0]


def open_view_and_residuals(lut: Path | None, device: str, backend: str, threads: int,
                            spec: Any, **options: Any) -> tuple[Any, list[float]]:
    """The latency view, and the residuals of the last validation of ``spec``'s context."""
    from perfstudent.lut import LatencyTable, spec_context

    with LatencyTable.open(lut, create=False) as table:
        view = table.view_for(device, backend, threads=threads, **options)
        found = [] if spec is None else table.validations(view.fingerprint, spec_context(spec))
    return view, (list(found[-1].get("residuals", [])) if found else [])


@cli.command()
@click.option("--budget", required=True, help="Latency budget with a unit: 30ms, 0.03s, 1500us.")
@click.option("--arch", required=True, help="Student family, e.g. resnet20.")
@click.option("--device", default="local", show_default=True)
@click.option("--backend", default="onnxruntime", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Threads the LUT was profiled with.")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Backend setting the LUT was profiled with, e.g. opt_level=all.")
@click.option("--input-size", type=click.IntRange(min=1), default=None,
              help="Input resolution (default: the saliency file's, else the family's).")
@click.option("--in-channels", type=click.IntRange(min=1), default=None)
@click.option("--num-classes", type=click.IntRange(min=1), default=None)
@click.option("--lut", type=click.Path(path_type=Path), default=None,
              help="LUT file (default: $PERFSTUDENT_LUT or the user data directory).")
@click.option("--saliency", "saliency_path", type=click.Path(path_type=Path), default=None,
              help="Saliency JSON from perfstudent saliency (default: every channel counts 1).")
@click.option("--strategy", type=click.Choice(["perf", "pruned", "uniform"]), default="perf",
              show_default=True)
@click.option("--margin", default="auto", show_default=True,
              help="Plan this far below the budget: a duration (0, 50us) or auto, a conformal bound "
                   "from the residuals `lut validate` stored, so 95% of plans measure within budget.")
@click.option("--verify", is_flag=True, help="Measure the planned student end to end.")
@click.option("--protocol", "protocol_name", type=click.Choice(["default", "fast", "careful"]),
              default="default", show_default=True, help="Timing protocol of --verify.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output plan JSON.")
def plan(budget: str, arch: str, device: str, backend: str, threads: int,
         options: tuple[str, ...], input_size: int | None, in_channels: int | None, num_classes: int | None,
         lut: Path | None, saliency_path: Path | None, strategy: str, margin: str,
         verify: bool, protocol_name: str, out: Path) -> None:
    """Choose per-slot widths of a student that fits a latency budget.

    \b
    Example:
      perfstudent plan --budget 2ms --arch resnet20 --device local --backend onnxruntime \\
          --threads 1 --saliency sal.json --out plan.json
    """
    from perfstudent.students import full_spec
    from perfstudent.students.planner import make_plan, plan_summary
    from perfstudent.students.saliency import Saliency
    from perfstudent.units import parse_duration_ms

    budget_ms = parse_duration_ms(budget, "budget")
    margin_ms = None if margin == "auto" else parse_duration_ms(margin, "margin", allow_zero=True)
    sal = Saliency.load(saliency_path) if saliency_path else None
    base = full_spec(arch, input_size or (sal.input_size if sal else None),
                     in_channels or (sal.in_channels if sal else None),
                     num_classes or (sal.num_classes if sal else None))
    if sal is not None:
        from perfstudent.students.registry import get_family

        sal.check_matches(base.family, base.input_size, get_family(base.family).full_widths())
    backend_options = parse_options(options)
    view, residuals = open_view_and_residuals(lut, device, backend, threads, base,
                                              **backend_options)
    note = None
    if margin_ms is None:
        from perfstudent.students.margin import conformal_margin

        margin_ms, note = conformal_margin(residuals, budget_ms)
    result = make_plan(strategy, budget_ms, view, base, sal, margin_ms,
                       device=device, backend=backend, threads=threads)
    result.margin_note = note
    click.echo(plan_summary(result))
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if verify:
        result.verified = _verify(result, device, backend, threads, protocol_name, backend_options)
    result.save(out)
    click.echo(f"wrote {out}")


def _verify(result: Any, device: str, backend: str, threads: int, protocol_name: str,
            options: dict[str, Any]) -> dict[str, Any]:
    from perfstudent.units import format_ms

    try:
        from perfstudent.profiler.measure import PROTOCOLS, measure_spec
    except ImportError as exc:
        raise PerfStudentError(f"--verify needs the profiler's measure_spec, which is missing: {exc}") \
            from None
    measured = measure_spec(result.spec, device=device, backend=backend, threads=threads,
                            protocol=PROTOCOLS[protocol_name], **options)
    verdict = "within budget" if measured.ms <= result.budget_ms else "OVER budget"
    click.echo(f"verify: measured {format_ms(measured.ms)} (spread {measured.spread:.1%}), "
               f"predicted {format_ms(result.predicted_ms)}, budget {format_ms(result.budget_ms)}: "
               f"{verdict} (slack {(result.budget_ms - measured.ms) / result.budget_ms:+.1%})")
    return {"measured_ms": measured.ms, "protocol": protocol_name, "measurement": measured.to_dict(),
            "within_budget": measured.ms <= result.budget_ms}
