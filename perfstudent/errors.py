"""One error hierarchy for the whole package.

The command line turns :class:`InputError` (and its subclasses) into exit
code 2 with a one-line message, and any other :class:`PerfStudentError` into
exit code 1. Library code raises these instead of printing.
"""

from __future__ import annotations


class PerfStudentError(Exception):
    """A failure perfstudent understands and can explain in one line."""

    exit_code = 1


class InputError(PerfStudentError):
    """Bad usage or bad input: a file, an argument, a configuration."""

    exit_code = 2


class SpecError(InputError):
    """An invalid WidthSpec or an unknown architecture family."""
