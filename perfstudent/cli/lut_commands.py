"""The ``lut`` group: show, export, import, merge, validate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from perfstudent.cli._root import cli
from perfstudent.cli.options import LUT_OPTION, target_of, target_options


@cli.group()
def lut() -> None:
    """Inspect, move and validate latency tables.

    \b
    Example:
      perfstudent lut show
      perfstudent lut validate --family resnet20 --samples 50
    """


@lut.command()
@LUT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(lut_path: Path | None, as_json: bool) -> None:
    """Fingerprints, row counts, overheads and coverage per swept family.

    \b
    Example:
      perfstudent lut show --lut lut.sqlite
    """
    from perfstudent.lut import LatencyTable
    from perfstudent.lut.show import describe

    with LatencyTable.open(lut_path, create=False) as table:
        info, path = describe(table), table.path
    if as_json:
        click.echo(json.dumps({"path": str(path), "fingerprints": info}, indent=2))
        return
    click.echo(f"LUT {path}: {len(info)} fingerprint(s)")
    for fp in info:
        click.echo(f"  {fp['id']}  {fp['label']}  {fp['fingerprint']['device_model']}  "
                   f"{fp['rows']} rows ({fp['noisy']} noisy)  settings {fp['fingerprint']['settings']}")
        for sw in fp["sweeps"]:
            click.echo(f"    {sw['family']} @{sw['input_size']} ({sw['mode']}): {sw['measured']} of "
                       f"{sw['total']} (block, width) pairs measured, {sw['answerable']} answerable")
        for ctx, ms in fp["overheads"].items():
            share = fp["overhead_shares"].get(ctx)
            click.echo(f"    overhead {ctx}: {ms:+.4f} ms"
                       + (f" ({share:.0%} of the full network)" if share is not None else "")
                       + f", scale {fp['scales'][ctx]:.3f} (fitted on the smoothed rows)")


@lut.command("export")
@LUT_OPTION
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet",
              show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output file.")
@click.option("--force", is_flag=True,
              help="Replace --out even if it holds something of another kind (a LUT, a checkpoint, ...).")
def export_cmd(lut_path: Path | None, fmt: str, out: Path, force: bool) -> None:
    """Write every row and overhead term to Parquet or CSV.

    \b
    Example:
      perfstudent lut export --format csv --out lut.csv
    """
    from perfstudent.guards import check_output
    from perfstudent.lut import LatencyTable
    from perfstudent.lut.transfer import export_table

    with LatencyTable.open(lut_path, create=False) as table:
        check_output(out, "file", [table.path], force=force)
        n = export_table(table, out, fmt)
    click.echo(f"wrote {n} lines to {out}")


_CONFLICT = click.option("--on-conflict", type=click.Choice(["error", "keep", "replace"]),
                         default="error", show_default=True,
                         help="When a row exists with a different measurement.")


@lut.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@LUT_OPTION
@_CONFLICT
def import_cmd(source: Path, lut_path: Path | None, on_conflict: str) -> None:
    """Import an exported table (Parquet/CSV) measured elsewhere.

    \b
    Example:
      perfstudent lut import pi4-lut.parquet --lut lut.sqlite
    """
    from perfstudent.lut import LatencyTable
    from perfstudent.lut.transfer import import_entries, parse_frame, read_frame

    entries = parse_frame(read_frame(source), source)  # every line checked before the LUT is opened
    with LatencyTable.open(lut_path) as table:
        report = import_entries(table, entries, on_conflict)
    click.echo(f"imported {source}: {report}")


@lut.command()
@click.argument("other", type=click.Path(path_type=Path))
@LUT_OPTION
@_CONFLICT
def merge(other: Path, lut_path: Path | None, on_conflict: str) -> None:
    """Merge another LUT file into this one.

    \b
    Example:
      perfstudent lut merge pi4.sqlite --lut lut.sqlite
    """
    from perfstudent.lut.transfer import merge_files

    report = merge_files(other, lut_path, on_conflict)
    click.echo(f"merged {other}: {report}")


@lut.command()
@target_options
@click.option("--family", "--arch", "family", required=True, help="Family of the students.")
@click.option("--input-size", type=int, default=None, help="Input resolution (family default).")
@click.option("--in-channels", type=int, default=None, help="Input channels (family default).")
@click.option("--num-classes", type=int, default=None, help="Classes (family default).")
@click.option("--samples", type=click.IntRange(min=4), default=50, show_default=True,
              help="Students (random ones of every kind, then the planner's own outputs).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--saliency", "saliency_path", type=click.Path(path_type=Path), default=None,
              help="Saliency JSON: adds pruned plans to the planner's students.")
@click.option("--predictors", default="lut,isolated,macs", show_default=True,
              help="Comma-separated: lut (required), isolated (every layer alone, summed), macs.")
@click.option("--estimator", default=None,
              help="Re-read the LUT's raw samples with this estimator (min, p10, p20, median).")
@click.option("--plans/--no-plans", default=True, show_default=True,
              help="Include the planner's outputs among the students.")
@LUT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def validate(device: str, backend: str, threads: int, options: tuple[str, ...], protocol_name: str,
             family: str, input_size: int | None, in_channels: int | None, num_classes: int | None,
             samples: int, seed: int, saliency_path: Path | None, predictors: str,
             estimator: str | None, plans: bool, lut_path: Path | None, as_json: bool) -> None:
    """Predict students with the LUT and two proxies, measure them, and compare.

    Students of several kinds (each slot uniform; one fraction per stage; a few
    slots full, the rest thin; the planner's outputs at several budgets) are
    measured twice, interleaved; the report shows, side by side, the LUT, the
    sum of isolated layers and a MAC count fitted on uniformly thinned
    students, and the noise floor (pass A against pass B). The residuals are
    stored in the LUT for `plan --margin auto`.

    \b
    Example:
      perfstudent lut validate --family resnet20 --samples 50
      perfstudent lut validate --family resnet20 --input-size 8 --in-channels 1 --json
    """
    from perfstudent.pipeline.validate import validate_lut
    from perfstudent.plan.saliency import Saliency
    from perfstudent.students import full_spec

    base = full_spec(family, input_size, in_channels, num_classes)
    chosen = tuple(p.strip() for p in predictors.split(",") if p.strip())
    sal = Saliency.load(saliency_path) if saliency_path else None
    target = target_of(device, backend, threads, options, protocol_name)
    report, stored = validate_lut(target, lut_path, base, samples, seed, saliency=sal,
                                  predictors=chosen, plans=plans, estimator=estimator)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.text())
    if not stored:
        click.echo("warning: the LUT is not writable; the residuals were not stored, so "
                   "`plan --margin auto` cannot use them", err=True)
