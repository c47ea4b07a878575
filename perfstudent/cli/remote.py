"""Remote boards: ``tracker`` and ``serve`` (TVM RPC, loopback unless told otherwise)."""

from __future__ import annotations

import click

from perfstudent.cli._root import cli


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

    click.echo(f"TVM RPC tracker on {host}:{port} (Ctrl-C to stop)", err=True)
    run_tracker(host, port)


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

    run_server(tracker_addr, key, host, port, port_end, custom_addr,
               announce=lambda line: click.echo(line, err=True))
