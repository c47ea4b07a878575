"""The command line's contract for bad input, checked the same way everywhere.

Bad input exits 2 with exactly one line on stderr that starts with ``error:``,
no traceback, and every file that was good before is byte for byte the same
after (``keep``). :func:`one_line_error` checks a result already obtained (and,
with ``code=1``, a failure that is not the user's input).
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from pathlib import Path

from click.testing import CliRunner, Result

from perfstudent.cli import cli


def one_line_error(result: Result, code: int = 2, match: str = "") -> str:
    """The single ``error:`` line of ``result``, after checking the exit code and the rest."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output, result.output
    assert match in lines[0], lines[0]
    return lines[0]


def fails_cleanly(args: list[str], match: str = "", keep: Iterable[Path | None] = ()) -> str:
    """Run ``perfstudent ARGS``; it must fail on bad input and leave ``keep`` untouched."""
    before = {p: p.read_bytes() for p in keep if p is not None and p.exists()}
    line = one_line_error(CliRunner().invoke(cli, args), 2, match)
    assert {p: p.read_bytes() for p in before} == before, "a file that was good was changed"
    return line


def ctrl_c_as_at_a_terminal() -> None:
    """``preexec_fn`` for a child a test will Ctrl-C: SIGINT and SIGQUIT back to their defaults.

    A job started in the background by a shell without job control (``cmd &`` in a script,
    as CI runners and nohup do) inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler (our servers, likewise, keep a signal ignored at entry
    ignored, as ``nohup`` asks). The tests of what Ctrl-C does need the terminal's
    defaults whatever ran the suite.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
