"""The ``lut`` group: show, export, import, merge, validate."""

from __future__ import annotations

import json
from pathlib import Path

import click

from perfstudent.cli._root import cli
from perfstudent.cli.profiler import LUT_OPTION, _protocol, parse_options, target_options
from perfstudent.errors import InputError


@cli.group()
def lut() -> None:
    """Inspect, move and validate latency tables.

    \b
    Example:
      perfstudent lut show
      perfstudent lut validate --arch resnet20 --samples 50
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
                       f"{sw['total']} shapes measured, {sw['answerable']} answerable")
        for ctx, ms in fp["overheads"].items():
            click.echo(f"    overhead {ctx}: {ms:+.4f} ms")


@lut.command("export")
@LUT_OPTION
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet",
              show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output file.")
def export_cmd(lut_path: Path | None, fmt: str, out: Path) -> None:
    """Write every row and overhead term to Parquet or CSV.

    \b
    Example:
      perfstudent lut export --format csv --out lut.csv
    """
    from perfstudent.lut import LatencyTable
    from perfstudent.lut.transfer import export_table

    with LatencyTable.open(lut_path, create=False) as table:
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
    from perfstudent.lut.transfer import import_frame, read_frame

    frame = read_frame(source)
    with LatencyTable.open(lut_path) as table:
        report = import_frame(table, frame, on_conflict)
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
    from perfstudent.lut import LatencyTable
    from perfstudent.lut.transfer import merge_tables

    with LatencyTable.open(lut_path) as table:
        report = merge_tables(table, other, on_conflict)
    click.echo(f"merged {other}: {report}")


@lut.command()
@target_options
@click.option("--arch", required=True, help="Family of the random students.")
@click.option("--input-size", type=int, default=None, help="Input resolution (family default).")
@click.option("--samples", type=click.IntRange(min=2), default=50, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--distribution", type=click.Choice(["uniform", "scaled"]), default="uniform",
              show_default=True, help="uniform: each slot U(1, full); scaled: a global fraction "
              "U(0.1, 1) with ±30% per-slot jitter.")
@LUT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def validate(device: str, backend: str, threads: int, options: tuple[str, ...], protocol_name: str,
             arch: str, input_size: int | None, samples: int, seed: int, distribution: str,
             lut_path: Path | None, as_json: bool) -> None:
    """Predict random students with the LUT and measure them end to end.

    \b
    Example:
      perfstudent lut validate --arch resnet20 --samples 50 --backend onnxruntime --json
    """
    from perfstudent.lut import Fingerprint, LatencyTable
    from perfstudent.lut.validate import validate as run_validation
    from perfstudent.profiler.backends import get_backend
    from perfstudent.profiler.devices import get_device
    from perfstudent.students import full_spec

    base = full_spec(arch, input_size)
    be = get_backend(backend, get_device(device), threads, **parse_options(options))
    try:
        with LatencyTable.open(lut_path, create=False) as table:
            view = table.view(Fingerprint.for_backend(be))
        report = run_validation(view, be, base, samples, _protocol(protocol_name), seed,
                                distribution=distribution)
    finally:
        be.close()
    if not report.measured_ms:
        raise InputError("no students were measured")
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.text())
