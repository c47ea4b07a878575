"""Start TVM RPC trackers and servers (``perfstudent tracker`` / ``perfstudent serve``).

Both bind loopback (127.0.0.1) unless told otherwise: a TVM RPC server runs
any code a client uploads, so exposing one (``--host 0.0.0.0`` on a board,
needed when the tracker and clients are other machines) is a decision for a
trusted network only (:func:`exposure_warning`).

How TVM's pieces talk: each server registers with the tracker; a client asks
the tracker for a free server of a key and then connects *directly* to that
server's address, so a board's server must be reachable from the workstation.

Stopping whole: TVM runs the tracker or server in a worker process (and a
server forks one more per session), which outlives its parent when only the
parent is signalled. Here the workers start with SIGINT ignored (so Ctrl-C at
a terminal, which reaches the whole foreground group, reaches only this
process), and SIGTERM, SIGINT and SIGHUP end every process this one started,
children and their children, before it returns (and no other child of this process).
Killed outright (SIGKILL), it runs no code: a guardian process
(:mod:`perfstudent.profiler.proctree`) then ends the worker and its sessions.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
from collections.abc import Callable
from typing import Any

from perfstudent.errors import InputError, PerfStudentError
from perfstudent.profiler.proctree import children, end_tree, start_guardian
from perfstudent.profiler.remote import parse_tracker, tracker_listening

LOOPBACK = "127.0.0.1"

def serve(tracker: str, key: str, host: str = LOOPBACK, port: int = 9090,
          port_end: int = 9199, custom_addr: str | None = None,
          announce: Callable[[str], None] | None = None) -> int:
    """Run a TVM RPC server registered under ``key`` on ``tracker`` until a signal stops it.

    ``announce`` receives one line once the arguments and the tracker have checked out.
    Returns the number of the signal that stopped it (SIGTERM, SIGINT or SIGHUP), after
    every process it started has ended.
    """
    from tvm import rpc

    tracker_host, tracker_port = parse_tracker(tracker)
    if not key or ":" in key:
        raise InputError(f"--key must be a non-empty name without ':', got {key!r}")
    _check_ports(port, port_end)
    check_bindable(host)
    if not tracker_listening(tracker_host, tracker_port):
        raise InputError(f"no TVM RPC tracker listens at {tracker}; start one first: "
                         f"perfstudent tracker --host {tracker_host} --port {tracker_port}")
    where = f"{host}:{port}" if port_end == port + 1 else f"{host}:{port}..{port_end - 1}"
    return _run_until_signalled(
        lambda: _cleanly(rpc.Server)(host, port, port_end, key=key,
                                     tracker_addr=(tracker_host, tracker_port),
                                     custom_addr=custom_addr),
        "TVM RPC server", where,
        announce and (lambda: announce(f"TVM RPC server key {key!r} on {host}:{port}.. "
                                       f"-> tracker {tracker}")))


def run_tracker(host: str = LOOPBACK, port: int = 9190,
                announce: Callable[[str], None] | None = None) -> int:
    """Run a TVM RPC tracker on ``host:port`` until a signal stops it (see :func:`serve`)."""
    from tvm.rpc.tracker import Tracker

    _check_ports(port, port + 1)
    check_bindable(host)
    if tracker_listening(host, port, timeout_s=1.0):
        raise InputError(f"something already listens on {host}:{port}")
    return _run_until_signalled(
        lambda: _cleanly(Tracker)(host, port=port, port_end=port + 1),
        "TVM RPC tracker", f"{host}:{port}",
        announce and (lambda: announce(f"TVM RPC tracker on {host}:{port} (Ctrl-C to stop)")))


def exposure_warning(host: str, what: str) -> str | None:
    """A one-line warning when ``host`` is not a loopback address, else None.

    ``what`` is ``"server"`` (runs whatever code a client sends) or ``"tracker"``.
    """
    if _is_loopback(host):
        return None
    if what == "server":
        return (f"warning: --host {host} exposes this TVM RPC server beyond this machine: anyone "
                "who reaches it can run any code here; use it on a trusted network only")
    return (f"warning: --host {host} exposes this TVM RPC tracker beyond this machine: anyone "
            "who reaches it can register boards and take their sessions; trusted network only")


def check_bindable(host: str) -> None:
    """InputError unless ``host`` is an address of this machine that a socket can bind."""
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise InputError(f"cannot bind to --host {host!r}: not an address ({reason})") from None
    family, _, _, _, address = infos[0]
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind(address)
    except OSError as exc:
        raise InputError(f"cannot bind to --host {host!r}: {exc.strerror or exc}") from None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_ports(port: int, port_end: int) -> None:
    if not 0 < port < port_end <= 65536:
        raise InputError(f"need 0 < port < port-end <= 65536, got {port}, {port_end}")


def _cleanly(cls: type) -> type:
    """``cls`` (TVM's Tracker or Server), whose constructor, when it fails, ends its worker.

    TVM's own ``__del__`` on a half-built Tracker raises AttributeError inside its
    shutdown; this subclass kills the worker and leaves nothing for ``__del__`` to do.
    """

    class Clean(cls):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            try:
                super().__init__(*args, **kwargs)
            except BaseException:
                worker, self.proc = getattr(self, "proc", None), None
                if worker is not None:
                    worker.kill()
                raise

    Clean.__name__ = Clean.__qualname__ = cls.__name__
    return Clean


class _Stop(Exception):
    """Raised in the main thread by a stop signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _run_until_signalled(start: Callable[[], Any], what: str, where: str,
                         announce: Callable[[], None] | None) -> int:
    """Start TVM's ``what`` with ``start()``, hold until a stop signal, end every process started.

    Returns the signal's number; InputError if it cannot start (e.g. no free port),
    PerfStudentError if its worker dies by itself.
    """
    previous = {s: signal.getsignal(s) for s in _STOP_SIGNALS}
    stops: list[int] = []
    handle: Any = None
    # only what this call starts is ended (a caller's other children are none of its business)
    children_before = set(children(os.getpid()))

    def _raise_stop(signum: int, _frame: Any) -> None:
        if not stops:  # only the first: a second signal must not cut the clean-up short
            stops.append(signum)
            raise _Stop(signum)

    # SIGINT or SIGHUP ignored when we started (nohup, a background job of a script): keep it so
    watched = [s for s in _STOP_SIGNALS if s == signal.SIGTERM or previous[s] != signal.SIG_IGN]
    try:
        # A handler is reset to the default across exec, SIG_IGN is inherited: the worker
        # (and its session processes) start with SIGINT ignored and leave Ctrl-C to us.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for s in watched:
            if s != signal.SIGINT:
                signal.signal(s, _raise_stop)
        try:
            handle = start()
        except (OSError, ValueError, RuntimeError, ChildProcessError) as exc:
            raise InputError(f"cannot start the {what} on {where}: {_last_line(exc)}") from None
        # killed outright (SIGKILL), this process runs no clean-up: its guardian ends the worker
        start_guardian([pid for pid in children(os.getpid()) if pid not in children_before])
        if signal.SIGINT in watched:
            signal.signal(signal.SIGINT, _raise_stop)
        if announce is not None:
            announce()
        while handle.proc is not None and handle.proc.is_alive():
            handle.proc.join(0.5)
        raise PerfStudentError(f"the {what} on {where} stopped by itself (its worker process "
                               "exited); see the log lines above")
    except _Stop as stop:
        return stop.signum
    finally:
        for s in _STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        end_tree([pid for pid in children(os.getpid()) if pid not in children_before])
        if handle is not None and handle.proc is not None:
            handle.proc.kill()  # reaps it; and TVM's __del__ finds nothing left to stop
            handle.proc = None
        for s, handler in previous.items():
            signal.signal(s, handler)


def _last_line(exc: BaseException) -> str:
    """The message of an exception from TVM's worker (its text is the worker's traceback)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return re.sub(r"^[A-Za-z_][\w.]*(Error|Exception): ", "", text)
