"""Start TVM RPC trackers and servers (``perfstudent tracker`` / ``perfstudent serve``).

Both bind loopback (127.0.0.1) unless told otherwise: a TVM RPC server runs
any code a client uploads, so exposing one (``--host 0.0.0.0`` on a board,
needed when the tracker and clients are other machines) is a decision for a
trusted network only.

How TVM's pieces talk: each server registers with the tracker; a client asks
the tracker for a free server of a key and then connects *directly* to that
server's address, so a board's server must be reachable from the workstation.
"""

from __future__ import annotations

from collections.abc import Callable

from perfstudent.errors import InputError
from perfstudent.profiler.remote import parse_tracker, tracker_listening

LOOPBACK = "127.0.0.1"


def serve(tracker: str, key: str, host: str = LOOPBACK, port: int = 9090,
          port_end: int = 9199, custom_addr: str | None = None,
          announce: Callable[[str], None] | None = None) -> None:
    """Run a TVM RPC server registered under ``key`` on ``tracker`` until interrupted.

    ``announce`` receives one line once the arguments and the tracker have checked out.
    """
    from tvm import rpc

    tracker_host, tracker_port = parse_tracker(tracker)
    if not key or ":" in key:
        raise InputError(f"--key must be a non-empty name without ':', got {key!r}")
    _check_ports(port, port_end)
    if not tracker_listening(tracker_host, tracker_port):
        raise InputError(f"no TVM RPC tracker listens at {tracker}; start one first: "
                         f"perfstudent tracker --host {tracker_host} --port {tracker_port}")
    if announce is not None:
        announce(f"TVM RPC server key {key!r} on {host}:{port}.. -> tracker {tracker}")
    server = rpc.Server(host, port, port_end, key=key, tracker_addr=(tracker_host, tracker_port),
                        custom_addr=custom_addr)
    server.proc.join()


def run_tracker(host: str = LOOPBACK, port: int = 9190) -> None:
    """Run a TVM RPC tracker on ``host:port`` until interrupted."""
    from tvm.rpc.tracker import Tracker

    _check_ports(port, port + 1)
    if tracker_listening(host, port, timeout_s=1.0):
        raise InputError(f"something already listens on {host}:{port}")
    tracker = Tracker(host, port=port, port_end=port + 1)
    tracker.proc.join()


def _check_ports(port: int, port_end: int) -> None:
    if not 0 < port < port_end <= 65536:
        raise InputError(f"need 0 < port < port-end <= 65536, got {port}, {port_end}")
