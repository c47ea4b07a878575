"""Allow ``python -m perfstudent``; also the console entry point ``perfstudent``.

The command line takes a few seconds to load (torch); a Ctrl-C meanwhile still
ends with one line and exit code 130, as one while a command runs does
(``perfstudent.cli._root``).
"""

import sys


def main() -> None:
    """Load the command line, then run it."""
    try:
        from perfstudent.cli import main as cli_main
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    cli_main()


if __name__ == "__main__":
    main()
