"""``perfstudent tracker`` / ``serve`` stop whole, and refuse what they cannot bind in one line.

The real commands run as subprocesses in their own session (process group), as
tests/rpc_servers.py starts them. After SIGTERM to the parent alone (``kill``), or
SIGINT to the whole group (Ctrl-C at a terminal), no process of the group may be
left running within a few seconds, the port must refuse connections and no client
can get a session. Bad addresses and busy port ranges exit 2 with one line.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from click.testing import CliRunner

from perfstudent.cli import cli
from tests.cli_contract import ctrl_c_as_at_a_terminal, fails_cleanly, one_line_error
from tests.rpc_servers import free_port

pytest.importorskip("tvm")

from perfstudent.profiler.proctree import POLL_S
from perfstudent.profiler.remote import connect_tracker, server_count, tracker_listening
from tests import rpc_servers

ROOT = Path(__file__).resolve().parents[1]
GONE_WITHIN_S = 5.0


def group_alive(pgid: int) -> list[int]:
    """Processes of group ``pgid`` still running (zombies, ended but unreaped, do not count)."""
    alive = []
    for entry in Path("/proc").glob("[0-9]*"):
        with suppress(OSError, ValueError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                alive.append(int(entry.name))
    return alive


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


@contextmanager
def spawned(*args: str, stderr: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m perfstudent ARGS`` in a new session, always killed (the group) at the end."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    with stderr.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "perfstudent", *args], start_new_session=True,
                                env=env, stdout=subprocess.DEVNULL, stderr=err,
                                preexec_fn=ctrl_c_as_at_a_terminal)
    try:
        yield proc
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes],
             timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, f"{what}: the command exited with {proc.returncode}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.3)


def assert_ended_whole(proc: subprocess.Popen[bytes], port: int, code: int) -> None:
    """The command exits with ``code``, and within GONE_WITHIN_S nothing of its group runs
    and nothing listens on ``port``."""
    assert proc.wait(timeout=GONE_WITHIN_S + 10) == code
    deadline = time.monotonic() + GONE_WITHIN_S
    while (group_alive(proc.pid) or accepts(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_alive(proc.pid) == [], "a process of the server's group is still running"
    assert not accepts(port), f"something still listens on {port}"


def test_tracker_sigterm_to_the_parent_ends_its_worker(tmp_path: Path) -> None:
    port = free_port()
    err = tmp_path / "stderr"
    with spawned("tracker", "--host", "127.0.0.1", "--port", str(port), stderr=err) as proc:
        wait_for(lambda: tracker_listening("127.0.0.1", port, 1.0), "tracker listening", proc)
        assert len(group_alive(proc.pid)) >= 2  # the parent and TVM's worker: the case at stake
        os.kill(proc.pid, signal.SIGTERM)  # the parent only, as `kill PID` does
        assert_ended_whole(proc, port, 128 + signal.SIGTERM)
    text = err.read_text()
    assert "Traceback" not in text and "stopped by SIGTERM" in text


def test_tracker_sigkill_to_the_parent_ends_its_worker(tmp_path: Path) -> None:
    """``kill -9 PID``: the parent runs no clean-up, its guardian ends TVM's worker."""
    port = free_port()
    with spawned("tracker", "--port", str(port), stderr=tmp_path / "stderr") as proc:
        wait_for(lambda: tracker_listening("127.0.0.1", port, 1.0), "tracker listening", proc)
        assert len(group_alive(proc.pid)) >= 3  # the parent, TVM's worker, the guardian
        os.kill(proc.pid, signal.SIGKILL)  # the parent only
        assert proc.wait(timeout=10) == -signal.SIGKILL
        deadline = time.monotonic() + GONE_WITHIN_S + POLL_S
        while (group_alive(proc.pid) or accepts(port)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert group_alive(proc.pid) == [], "TVM's worker (or the guardian) outlived the parent"
        assert not accepts(port), f"something still listens on {port}"


def test_tracker_ctrl_c_to_the_group_exits_130_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    err = tmp_path / "stderr"
    with spawned("tracker", "--port", str(port), stderr=err) as proc:
        wait_for(lambda: tracker_listening("127.0.0.1", port, 1.0), "tracker listening", proc)
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
        assert_ended_whole(proc, port, 130)
    text = err.read_text()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert [line for line in text.splitlines() if line.startswith("error:")] == ["error: interrupted"]


def test_serve_sigterm_with_a_session_open_leaves_nothing(tmp_path: Path) -> None:
    port = free_port()
    err = tmp_path / "stderr"
    with rpc_servers.tracker() as tracker_port, \
            spawned("serve", "--tracker", f"127.0.0.1:{tracker_port}", "--key", "robust",
                    "--port", str(port), "--port-end", str(port + 1), stderr=err) as proc:
        def registered() -> bool:
            try:
                return server_count(connect_tracker("127.0.0.1", tracker_port), "robust") >= 1
            except Exception:
                return False

        wait_for(registered, "server registered", proc)
        session = connect_tracker("127.0.0.1", tracker_port).request("robust", session_timeout=60)
        assert session is not None  # the server forked a process for it: three in the group
        deadline = time.monotonic() + 20
        while len(group_alive(proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(group_alive(proc.pid)) >= 3
        os.kill(proc.pid, signal.SIGTERM)
        assert_ended_whole(proc, port, 128 + signal.SIGTERM)
        deadline = time.monotonic() + GONE_WITHIN_S
        while registered() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not registered(), "the tracker still offers the stopped server to clients"
    assert "Traceback" not in err.read_text()


# -- bind failures and the exposure warning: one line ---------------------------------------

@pytest.mark.parametrize("host", ["999.1.1.1", "not a host", "192.0.2.1"])
def test_tracker_on_an_address_it_cannot_bind_is_one_line(host: str) -> None:
    fails_cleanly(["tracker", "--host", host, "--port", str(free_port())], "cannot bind to --host")


def test_serve_on_an_address_it_cannot_bind_is_one_line() -> None:
    with socket.socket() as fake_tracker:  # something listens where the tracker should be
        fake_tracker.bind(("127.0.0.1", 0))
        fake_tracker.listen()
        fails_cleanly(["serve", "--tracker", f"127.0.0.1:{fake_tracker.getsockname()[1]}",
                       "--key", "k", "--host", "999.1.1.1"], "cannot bind to --host")


def test_serve_with_no_free_port_in_its_range_is_one_line() -> None:
    """In this process: TVM's worker is ended, and no other child of the caller is touched."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        with socket.socket() as fake_tracker, socket.socket() as busy:
            fake_tracker.bind(("127.0.0.1", 0))
            fake_tracker.listen()
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            fails_cleanly(["serve", "--tracker", f"127.0.0.1:{fake_tracker.getsockname()[1]}",
                           "--key", "k", "--port", str(port), "--port-end", str(port + 1)],
                          f"cannot bind to any port in [{port}, {port + 1})")
        assert bystander.poll() is None, "a child the server did not start was ended"
        assert group_alive(os.getpgrp()).count(bystander.pid) == 1
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.parametrize(("host", "exposed"), [
    ("127.0.0.1", False), ("127.0.0.2", False), ("::1", False), ("localhost", False),
    ("0.0.0.0", True), ("::", True), ("192.168.1.10", True), ("board.local", True)])
def test_which_hosts_are_warned_about(host: str, exposed: bool) -> None:
    from perfstudent.profiler.rpc_serve import exposure_warning

    assert (exposure_warning(host, "server") is not None) == exposed


@pytest.mark.parametrize(("command", "what"), [("tracker", "tracker"), ("serve", "server")])
def test_a_non_loopback_host_prints_one_warning(command: str, what: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from perfstudent.profiler import rpc_serve

    def fake(*args: object, announce: Callable[[str], None], **kwargs: object) -> int:
        announce(f"started {what}")
        return signal.SIGTERM

    monkeypatch.setattr(rpc_serve, "run_tracker" if command == "tracker" else "serve", fake)
    args = [command, "--host", "0.0.0.0"] + (["--tracker", "127.0.0.1:9", "--key", "k"]
                                              if command == "serve" else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0] and what in warnings[0]
    if what == "server":
        assert "run any code" in warnings[0]
    loopback = CliRunner().invoke(cli, [*args[:1], *args[3:]])
    assert "warning:" not in loopback.stderr


def test_the_started_line_comes_only_after_the_checks() -> None:
    """Bad input gets its one error line, not the warning or the started line before it."""
    result = CliRunner().invoke(cli, ["tracker", "--host", "999.1.1.1"])
    one_line_error(result, 2, "cannot bind")
