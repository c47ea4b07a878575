"""Remote boards: ``tracker`` and ``serve`` (TVM RPC, loopback unless told otherwise).

Both run until a signal: SIGTERM, SIGINT (Ctrl-C) or SIGHUP end TVM's worker
processes too, and nothing keeps listening. Ctrl-C exits 130 (``interrupted``),
SIGTERM and SIGHUP 128 + the signal's number after a line saying so.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import click

from perfstudent.cli._root import cli


def _stopped(what: str, signum: int) -> None:
    """Exit as the signal that stopped a server says (the processes it started have ended)."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    click.echo(f"{what} stopped by {signal.Signals(signum).name}", err=True)
    raise click.exceptions.Exit(128 + signum)


def _announcer(host: str, what: str) -> Callable[[str], None]:
    """Print the started line, after a warning if ``host`` is not loopback (once it checked out,
    so bad input still gets its one error line)."""
    from perfstudent.profiler.rpc_serve import exposure_warning

    def announce(line: str) -> None:
        warning = exposure_warning(host, what)
        if warning is not None:
            click.echo(warning, err=True)
        click.echo(line, err=True)

    return announce


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (0.0.0.0 to accept boards and clients on the network).")
@click.option("--port", type=click.IntRange(1, 65535), default=9190, show_default=True)
def tracker(host: str, port: int) -> None:
    """Run a TVM RPC tracker that boards register with (runs until Ctrl-C).

    \b
    Example:
      perfstudent tracker --host 0.0.0.0 --port 9190
    """
    from perfstudent.profiler.rpc_serve import run_tracker

    signum = run_tracker(host, port, announce=_announcer(host, "tracker"))
    _stopped("TVM RPC tracker", signum)


@cli.command()
@click.option("--tracker", "tracker_addr", required=True, help="Tracker address HOST:PORT.")
@click.option("--key", required=True, help="Device key to register under (e.g. pi4).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; a board serving a remote workstation needs 0.0.0.0 "
                   "(trusted network only: clients run arbitrary code here).")
@click.option("--port", type=click.IntRange(1, 65535), default=9090, show_default=True,
              help="First port to try.")
@click.option("--port-end", type=click.IntRange(2, 65536), default=9199, show_default=True)
@click.option("--custom-addr", default=None,
              help="Address to report to the tracker (if clients must use another one).")
def serve(tracker_addr: str, key: str, host: str, port: int, port_end: int,
          custom_addr: str | None) -> None:
    """Run a TVM RPC server on this board, registered with a tracker (until Ctrl-C).

    \b
    Example:
      perfstudent serve --tracker 192.168.1.10:9190 --key pi4 --host 0.0.0.0
    """
    from perfstudent.profiler.rpc_serve import serve as run_server

    signum = run_server(tracker_addr, key, host, port, port_end, custom_addr,
                        announce=_announcer(host, "server"))
    _stopped("TVM RPC server", signum)
