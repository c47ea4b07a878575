"""Allow ``python -m perfstudent``."""

from perfstudent.cli import main

if __name__ == "__main__":
    main()
