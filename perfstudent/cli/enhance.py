"""``perfstudent enhance``: widen a given student's slots where the latency staircase allows."""

from __future__ import annotations

from pathlib import Path

import click

from perfstudent.cli._root import cli
from perfstudent.cli.options import LUT_OPTION, target_of, target_options


@cli.command()
@click.option("--spec", "spec_path", type=click.Path(path_type=Path), default=None,
              help="The student as a WidthSpec JSON (yours, or from export).")
@click.option("--plan", "plan_path", type=click.Path(path_type=Path), default=None,
              help="The student as a plan JSON (from plan or experiment, any strategy).")
@LUT_OPTION
@target_options
@click.option("--tolerance", default="1%", show_default=True,
              help="How much predicted latency the widening may add: a percentage of the "
                   "student's own prediction (1%) or a duration (20us, 0.02ms; 0: only free "
                   "widening).")
@click.option("--saliency", "saliency_path", type=click.Path(path_type=Path), default=None,
              help="Saliency JSON: maximise the Fisher score gained instead of the channels.")
@click.option("--measure", is_flag=True,
              help="Measure both students end to end (perfstudent measure's protocol, timed "
                   "together).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output plan JSON.")
@click.option("--force", is_flag=True,
              help="Replace --out even if it holds something of another kind (a LUT, a checkpoint, ...).")
def enhance(spec_path: Path | None, plan_path: Path | None, lut_path: Path | None, device: str,
            backend: str, threads: int, options: tuple[str, ...], protocol_name: str,
            tolerance: str, saliency_path: Path | None, measure: bool, out: Path,
            force: bool) -> None:
    """Widen a student's slots toward the top of their latency steps, within a tolerance.

    No slot is narrowed or made wider than full; the channels gained (or, with --saliency,
    the Fisher score) are maximised subject to the LUT-predicted latency rising by at most
    the tolerance. The result is a plan (strategy "<source>+enhance").

    \b
    Example:
      perfstudent enhance --plan pruned.json --lut lut.sqlite --tolerance 1% --out enhanced.json
      perfstudent enhance --spec mine.json --tolerance 20us --measure --out enhanced.json
    """
    from perfstudent.errors import InputError
    from perfstudent.guards import check_output
    from perfstudent.lut import default_lut_path
    from perfstudent.pipeline import enhance as run_enhance
    from perfstudent.plan.enhance import enhance_summary, parse_tolerance
    from perfstudent.plan.planner import Plan
    from perfstudent.plan.saliency import Saliency
    from perfstudent.students import WidthSpec

    if (spec_path is None) == (plan_path is None):
        raise InputError("give exactly one of --spec or --plan")
    check_output(out, "perfstudent.plan file",
                 [spec_path, plan_path, lut_path or default_lut_path(), saliency_path], force=force)
    tol = parse_tolerance(tolerance)
    source = Plan.load(plan_path) if plan_path is not None else None
    spec = source.spec if source is not None else WidthSpec.load(spec_path)  # type: ignore[arg-type]
    sal = Saliency.load(saliency_path) if saliency_path else None
    target = target_of(device, backend, threads, options, protocol_name)
    result = run_enhance(target, lut_path, spec, tol, sal, source, measure)
    click.echo(f"{result.strategy}: {spec.family} at {spec.input_size}px on "
               f"{result.device}/{result.backend}/t{result.threads}")
    click.echo(enhance_summary(result))
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    result.save(out)
    click.echo(f"wrote {out}")
