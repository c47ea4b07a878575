"""Sharded sweeps through a TVM RPC tracker with two loopback servers (the "board" is x86)."""

from __future__ import annotations

import collections
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from perfstudent.cli import cli
from perfstudent.convshape import ConvShape
from perfstudent.errors import InputError, PerfStudentError
from perfstudent.profiler.devices import Device, get_device
from perfstudent.profiler.measurement import Measurement, TimingProtocol

pytest.importorskip("tvm")

from perfstudent.profiler.remote import TrackerRunner, make_tracker_runner, parse_tracker
from perfstudent.students import full_spec
from tests import rpc_servers

FAST = TimingProtocol(warmup_s=0.0, block_s=0.005, repeats=3, remeasure=0)
SHAPES = [ConvShape("conv2d", c, c2, s, s, kernel=3, padding=1, epilogue="bn+relu")
          for c, c2, s in [(4, 8, 8), (8, 8, 8), (8, 16, 6), (16, 16, 6), (4, 4, 10),
                           (8, 4, 10), (12, 12, 7), (6, 6, 9), (6, 12, 5), (10, 10, 8)]]


@pytest.fixture(scope="module")
def tracker_port() -> Iterator[int]:
    with rpc_servers.tracker() as port:
        yield port


def board(key: str) -> Device:
    local = get_device("x86")
    return Device(name=key, kind="cpu", description="this machine as an RPC board", reach="rpc",
                  rpc_key=key, tvm_target=local.tvm_target, default_threads=1)


def test_sharded_sweep_lands_every_shape_once(tracker_port: int) -> None:
    got: collections.Counter[ConvShape] = collections.Counter()
    threads = set()
    with rpc_servers.servers(tracker_port, "two", 2, perfstudent_serve=1):
        runner = TrackerRunner(board("two"), f"127.0.0.1:{tracker_port}", FAST, progress=False)
        runner.run(SHAPES + SHAPES[:2], lambda s, m: (got.update([s]),
                                                     threads.add(threading.get_ident())))
        net = runner.time_model(full_spec("resnet20").with_widths({"layer1.0": 4}))
    assert net.samples == FAST.repeats and net.median_ms > 0
    assert got == collections.Counter(SHAPES)  # duplicates in the request measured once
    assert threads == {threading.get_ident()}  # rows are delivered on the caller's thread
    assert runner.settings()["rpc_key"] == "two" and runner.settings()["tune_trials"] == 0


@pytest.mark.slow
def test_a_server_lost_mid_sweep_costs_nothing(tracker_port: int,
                                              caplog: pytest.LogCaptureFixture) -> None:
    got: list[tuple[ConvShape, Measurement]] = []
    with rpc_servers.servers(tracker_port, "flaky", 2) as procs:
        def on_result(shape: ConvShape, measurement: Measurement) -> None:
            got.append((shape, measurement))
            if len(got) == 2:
                rpc_servers.kill(procs[0])  # one board disappears while others are in flight

        TrackerRunner(board("flaky"), f"127.0.0.1:{tracker_port}", FAST,
                      progress=False).run(SHAPES, on_result)
    assert "server lost" in caplog.text and "re-queued" in caplog.text
    shapes = [s for s, _m in got]
    assert sorted(shapes) == sorted(SHAPES) and len(shapes) == len(set(shapes))
    assert all(m.median_ms > 0 and m.samples == FAST.repeats for _s, m in got)


@pytest.mark.slow
def test_all_servers_lost_keeps_what_arrived(tracker_port: int) -> None:
    got: list[ConvShape] = []
    with rpc_servers.servers(tracker_port, "doomed", 1) as procs:
        def on_result(shape: ConvShape, measurement: Measurement) -> None:
            got.append(shape)
            rpc_servers.kill(procs[0])

        runner = TrackerRunner(board("doomed"), f"127.0.0.1:{tracker_port}", FAST,
                               progress=False)
        with pytest.raises(PerfStudentError, match="was lost: 1 rows were stored"):
            runner.run(SHAPES[:4], on_result)
    assert len(got) == 1


def test_no_server_for_the_key_and_bad_addresses(tracker_port: int) -> None:
    runner = TrackerRunner(board("nobody"), f"127.0.0.1:{tracker_port}", FAST, progress=False)
    with pytest.raises(PerfStudentError, match="perfstudent serve --tracker"):
        runner.run(SHAPES[:1], lambda s, m: None)
    for bad in ("localhost", "host:port", ":9190", "h:70000"):
        with pytest.raises(InputError, match="HOST:PORT"):
            parse_tracker(bad)
    unused = rpc_servers.free_port()
    with pytest.raises(PerfStudentError, match="cannot reach the TVM RPC tracker"):
        TrackerRunner(board("x"), f"127.0.0.1:{unused}", FAST, progress=False).run(
            SHAPES[:1], lambda s, m: None)


def test_make_tracker_runner_checks_backend_and_options() -> None:
    pi4 = get_device("pi4")
    with pytest.raises(InputError, match="--backend tvm"):
        make_tracker_runner("127.0.0.1:9190", pi4, "onnxruntime", FAST)
    with pytest.raises(InputError, match="unknown options"):
        make_tracker_runner("127.0.0.1:9190", pi4, "tvm", FAST, colour="red")
    runner = make_tracker_runner("127.0.0.1:9190", pi4, "tvm", FAST, tune_trials=8)
    assert runner.key == "pi4" and runner.threads == 4 and runner.compiler == "aarch64-linux-gnu-g++"
    assert runner.settings()["tune_trials"] == 8 and "cortex-a72" in runner.settings()["target"]


@pytest.mark.slow
def test_profile_command_through_the_tracker(tracker_port: int, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """``perfstudent profile --backend tvm --tracker`` fills the local LUT from two servers."""
    devices = tmp_path / "devices.toml"
    target = get_device("x86").tvm_target
    assert isinstance(target, dict)
    devices.write_text('[devices.rig]\nreach = "rpc"\nrpc_key = "rig"\n'
                       f'tvm_target = {{ kind = "llvm", mcpu = "{target.get("mcpu", "generic")}" }}\n')
    monkeypatch.setenv("PERFSTUDENT_DEVICES", str(devices))
    lut = tmp_path / "lut.sqlite"
    args = ["profile", "--device", "rig", "--backend", "tvm", "--tracker",
            f"127.0.0.1:{tracker_port}", "--arch", "resnet20", "--input-size", "8",
            "--protocol", "smoke", "--tolerance", "1.0", "--lut", str(lut), "--json"]
    with rpc_servers.servers(tracker_port, "rig", 2):
        first = CliRunner().invoke(cli, args)
        assert first.exit_code == 0, first.output
        again = CliRunner().invoke(cli, args)
    report = json.loads(first.stdout)
    assert report["measured"] > 0 and json.loads(again.stdout)["measured"] == 0
    with sqlite3.connect(lut) as conn:
        (fps,) = conn.execute("SELECT COUNT(DISTINCT fingerprint) FROM rows").fetchone()
        (count,) = conn.execute("SELECT COUNT(*) FROM rows").fetchone()
    assert fps == 1 and count == report["measured"]
