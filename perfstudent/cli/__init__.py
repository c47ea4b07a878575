"""The ``perfstudent`` command line: a thin click layer over the library.

Each subcommand lives in a module of this package, parses its options, calls
one library function and prints. Errors the library understands
(:class:`perfstudent.errors.PerfStudentError`) become one line on stderr and
exit code 2 (bad input) or 1 (failure). A new module registers its commands on
``cli`` and is listed in the import below, one module per line.
"""

from perfstudent.cli import (
    basic,
    enhance,
    experiment,
    fronts,
    lut_commands,
    planning,
    profiler,
    remote,
    train,
)
from perfstudent.cli._root import AppContext, cli, main

__all__ = [
    "AppContext",
    "basic",
    "cli",
    "enhance",
    "experiment",
    "fronts",
    "lut_commands",
    "main",
    "planning",
    "profiler",
    "remote",
    "train",
]
