"""Basic commands: ``devices`` and ``export``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from perfstudent.cli._root import cli
from perfstudent.errors import InputError


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def devices(as_json: bool) -> None:
    """Print this machine's fingerprint and the known devices with how each is reached.

    Devices are built in (local, pi4, x86, cuda) or defined in devices.toml
    ($PERFSTUDENT_DEVICES, else the user config dir).

    \b
    Example:
      perfstudent devices
      perfstudent devices --json
    """
    from perfstudent.profiler.devices import describe_devices
    from perfstudent.profiler.machine import machine_info

    info = machine_info()
    known = describe_devices()
    if as_json:
        click.echo(json.dumps(info | {"devices": known}, indent=2))
        return
    click.echo("this machine (device 'local'):")
    for key, value in info.items():
        if key == "runtimes":
            for name, version in value.items():
                click.echo(f"  {name + ':':<16} {version or 'not installed'}")
        else:
            click.echo(f"  {key + ':':<16} {value if value is not None else 'unknown'}")
    click.echo("\nknown devices:")
    for device in known:
        click.echo(f"  {device['name']:<8} {device['kind']:<5} {device['description']}")
        click.echo(f"  {'':<8} reach: {device['reachability']}")


@cli.command()
@click.option("--spec", "spec_path", type=click.Path(path_type=Path), default=None,
              help="WidthSpec (or Plan) JSON file.")
@click.option("--family", "--arch", "family", default=None,
              help="Export the full-width network of this family instead.")
@click.option("--input-size", type=int, default=None, help="With --family: input resolution.")
@click.option("--in-channels", type=int, default=None, help="With --family: input channels.")
@click.option("--num-classes", type=int, default=None, help="With --family: number of classes.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--opset", type=int, default=18, show_default=True,
              help="ONNX opset (17 up to the newest torch's exporter writes).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output .onnx path.")
@click.option("--force", is_flag=True,
              help="Replace --out even if it holds something of another kind (a LUT, a checkpoint, ...).")
def export(spec_path: Path | None, family: str | None, input_size: int | None,
           in_channels: int | None, num_classes: int | None, batch: int, opset: int,
           out: Path, force: bool) -> None:
    """Export a student to ONNX.

    \b
    Example:
      perfstudent export --spec spec.json --out model.onnx
      perfstudent export --family resnet20 --out resnet20.onnx
    """
    from perfstudent.guards import check_output
    from perfstudent.students import WidthSpec, full_spec
    from perfstudent.students.export import export_onnx

    if (spec_path is None) == (family is None):
        raise InputError("give exactly one of --spec or --family")
    check_output(out, "file", [spec_path], force=force)
    spec = WidthSpec.load(spec_path) if spec_path else full_spec(str(family), input_size,
                                                                 in_channels, num_classes)
    export_onnx(spec, out, batch=batch, opset=opset)
    click.echo(f"wrote {out}")
