"""The root ``perfstudent`` group, error handling and the console entry point.

Each subcommand parses its options, calls one library function and prints.
Errors the library understands (:class:`perfstudent.errors.PerfStudentError`)
become one line on stderr and exit code 2 (bad input) or 1 (failure).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import click

from perfstudent import __version__
from perfstudent.errors import PerfStudentError


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


def main() -> None:
    """Console entry point."""
    cli.main(prog_name="perfstudent")
