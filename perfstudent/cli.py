"""The ``perfstudent`` command line: a thin click layer over the library.

Each subcommand parses its options, calls one library function and prints.
Errors the library understands (:class:`perfstudent.errors.PerfStudentError`)
become one line on stderr and exit code 2 (bad input) or 1 (failure).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from perfstudent import __version__
from perfstudent.errors import InputError, PerfStudentError


@dataclass
class AppContext:
    """Options of the root group, handed to every subcommand."""

    verbose: int = 0


class PerfStudentGroup(click.Group):
    """A click group that turns library errors into one-line messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PerfStudentError as exc:
            _fail(str(exc), exc.exit_code)
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), 2)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


@click.group(cls=PerfStudentGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="perfstudent")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Make a trained CNN fast on a device without throwing its accuracy away.

    \b
    Example:
      perfstudent devices
      perfstudent export --spec spec.json --out model.onnx
    """
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = AppContext(verbose=verbose)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def devices(as_json: bool) -> None:
    """Print this machine's fingerprint (CPU, cores, governor, OS, runtimes).

    \b
    Example:
      perfstudent devices --json
    """
    from perfstudent.profiler.machine import machine_info

    info = machine_info()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo("this machine (device 'local'):")
    for key, value in info.items():
        if key == "runtimes":
            for name, version in value.items():
                click.echo(f"  {name + ':':<16} {version or 'not installed'}")
        else:
            click.echo(f"  {key + ':':<16} {value if value is not None else 'unknown'}")


@cli.command()
@click.option("--spec", "spec_path", type=click.Path(path_type=Path), default=None,
              help="WidthSpec (or Plan) JSON file.")
@click.option("--arch", default=None, help="Export the full-width network of this family instead.")
@click.option("--input-size", type=int, default=None, help="With --arch: input resolution.")
@click.option("--in-channels", type=int, default=None, help="With --arch: input channels.")
@click.option("--num-classes", type=int, default=None, help="With --arch: number of classes.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--opset", type=click.IntRange(min=17), default=18, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output .onnx path.")
def export(spec_path: Path | None, arch: str | None, input_size: int | None,
           in_channels: int | None, num_classes: int | None, batch: int, opset: int,
           out: Path) -> None:
    """Export a student to ONNX.

    \b
    Example:
      perfstudent export --spec spec.json --out model.onnx
      perfstudent export --arch resnet20 --out resnet20.onnx
    """
    from perfstudent.students import WidthSpec, full_spec
    from perfstudent.students.export import export_onnx

    if (spec_path is None) == (arch is None):
        raise InputError("give exactly one of --spec or --arch")
    spec = WidthSpec.load(spec_path) if spec_path else full_spec(str(arch), input_size,
                                                                 in_channels, num_classes)
    export_onnx(spec, out, batch=batch, opset=opset)
    click.echo(f"wrote {out}")


def main() -> None:
    """Console entry point."""
    cli.main(prog_name="perfstudent")


if __name__ == "__main__":  # pragma: no cover
    main()
