"""Start a TVM RPC tracker and servers on loopback for tests (always cleaned up)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ROOT = Path(__file__).resolve().parents[1]


def _spawn(module: str, *args: str) -> subprocess.Popen[bytes]:
    """``python -m MODULE --host 127.0.0.1 ARGS`` (``perfstudent CMD`` when module starts so)."""
    argv = [*module.split(), "--host", "127.0.0.1", *args]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    # its own process group: a server forks one child per session, killpg ends both
    return subprocess.Popen([sys.executable, "-m", *argv], start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@contextmanager
def tracker() -> Iterator[int]:
    """A tracker started by ``perfstudent tracker`` on loopback."""
    port = free_port()
    proc = _spawn("perfstudent tracker", "--port", str(port))
    try:
        from perfstudent.profiler.remote import tracker_listening

        deadline = time.monotonic() + 60
        while not tracker_listening("127.0.0.1", port, 1.0):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise TimeoutError("the TVM RPC tracker did not start")
            time.sleep(0.3)
        yield port
    finally:
        kill(proc)


@contextmanager
def servers(tracker_port: int, key: str, count: int, timeout_s: float = 120.0,
            perfstudent_serve: int = 0) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` RPC servers under ``key`` (the first ``perfstudent_serve`` of them started
    by ``perfstudent serve``, the others by ``tvm.exec.rpc_server``); waits until all are
    registered on the tracker."""
    from perfstudent.profiler.remote import connect_tracker, server_count

    procs = []
    try:
        for i in range(count):
            port = free_port()
            module = "perfstudent serve" if i < perfstudent_serve else "tvm.exec.rpc_server"
            procs.append(_spawn(module, "--tracker", f"127.0.0.1:{tracker_port}",
                                "--key", key, "--port", str(port), "--port-end", str(port + 1)))
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if server_count(connect_tracker("127.0.0.1", tracker_port), key) >= count:
                    break
            except Exception:  # the tracker may still be starting
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} RPC servers did not register within {timeout_s} s")
            time.sleep(0.5)
        yield procs
    finally:
        for proc in procs:
            kill(proc)
