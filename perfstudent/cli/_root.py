"""The root ``perfstudent`` group, error handling and the console entry point.

Each subcommand parses its options, calls one library function and prints.
Errors the library understands (:class:`perfstudent.errors.PerfStudentError`)
become one line on stderr and exit code 2 (bad input) or 1 (failure). Ctrl-C
(KeyboardInterrupt) becomes exit code 130 and one line that says how to go on
(:func:`interrupted_message`), instead of click's ``Aborted!`` and exit 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from perfstudent import __version__
from perfstudent.errors import PerfStudentError


@dataclass
class AppContext:
    """Options of the root group, handed to every subcommand."""

    verbose: int = 0


#: Commands that continue an interrupted run only when told so, and those that always do.
RESUME_WITH_FLAG = frozenset({"train", "distill"})
RESUME_BY_THEMSELVES = frozenset({"profile", "experiment", "quickstart"})
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C


def interrupted_message(command: str | None) -> str:
    """The line a Ctrl-C of ``perfstudent COMMAND`` ends with."""
    if command in RESUME_WITH_FLAG:
        return "interrupted; re-run the same command with --resume to continue"
    if command in RESUME_BY_THEMSELVES:
        return "interrupted; re-run the same command to continue"
    return "interrupted"


class PerfStudentGroup(click.Group):
    """A click group that turns library errors into one-line messages and exit codes."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            _fail(interrupted_message(None), INTERRUPTED_EXIT_CODE)
        except click.ClickException as exc:
            _fail_click(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _fail(interrupted_message(ctx.invoked_subcommand), INTERRUPTED_EXIT_CODE)
        except click.ClickException as exc:
            _fail_click(exc)
        except PerfStudentError as exc:
            _fail(str(exc), exc.exit_code)
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), 2)


def _fail_click(exc: click.ClickException) -> NoReturn:
    """Click's own errors (a bad or missing option) in the same one line as the library's.

    ``perfstudent`` or a group without arguments still prints its help.
    """
    if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
        raise exc
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message += f" (see {ctx.command_path} --help)"
    _fail(message, exc.exit_code)


def _fail(message: str, code: int) -> NoReturn:
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
    """Console entry point (``perfstudent.__main__.main`` calls it once this package loaded)."""
    cli.main(prog_name="perfstudent")
