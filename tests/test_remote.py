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

from perfstudent.blockshape import Chain
from perfstudent.cli import cli
from perfstudent.errors import InputError, PerfStudentError
from perfstudent.measurement import Measurement, TimingProtocol
from perfstudent.profiler.chains import Job, chain_job
from perfstudent.profiler.devices import Device, get_device

pytest.importorskip("tvm")

from perfstudent.profiler.remote import TrackerRunner, make_tracker_runner, parse_tracker
from perfstudent.students import full_spec, get_family
from perfstudent.students.sampling import uniform_student
from tests import rpc_servers

FAST = TimingProtocol(warmup_s=0.0, block_s=0.005, rounds=3, extra_rounds=0, canary_every=0)
SPEC = full_spec("resnet20", input_size=8)
CONTEXTS = get_family("resnet20").slot_chains(SPEC)
#: LUT jobs of resnet20 at 8x8: (slot, width, between its neighbours or alone)
JOBS = [chain_job(SPEC, slot, CONTEXTS[slot].at(width) if near else Chain(CONTEXTS[slot].block.at(width)))
        for slot, width, near in [("layer1.0", 4, False), ("layer1.0", 4, True), ("layer1.0", 9, False),
                                  ("layer1.0", 16, True), ("layer2.0", 8, False), ("layer2.0", 32, False),
                                  ("layer2.1", 12, False), ("layer2.1", 20, True), ("layer3.0", 16, False),
                                  ("layer3.1", 30, False)]]
CHAINS = [job.chain for job in JOBS]


@pytest.fixture(scope="module")
def tracker_port() -> Iterator[int]:
    with rpc_servers.tracker() as port:
        yield port


def board(key: str) -> Device:
    local = get_device("x86")
    return Device(name=key, kind="cpu", description="this machine as an RPC board", reach="rpc",
                  rpc_key=key, tvm_target=local.tvm_target, default_threads=1)


def test_sharded_sweep_lands_every_job_once(tracker_port: int) -> None:
    got: collections.Counter[Chain] = collections.Counter()
    delivered: list[Job] = []
    threads = set()

    def on_result(job: Job, m: Measurement) -> None:
        got.update([job.chain])
        delivered.append(job)
        threads.add(threading.get_ident())
        assert len(m.samples_ms) == FAST.rounds and m.ms > 0 and m.estimator == FAST.estimator

    small = uniform_student(SPEC, 0.25)
    big = full_spec("resnet20", input_size=32)
    with rpc_servers.servers(tracker_port, "two", 2, perfstudent_serve=1):
        runner = TrackerRunner(board("two"), f"127.0.0.1:{tracker_port}", FAST, progress=False)
        runner.run(JOBS + JOBS[:2], on_result)
        nets = runner.time_models([big, small, big])
    assert got == collections.Counter(CHAINS)  # duplicates in the request measured once
    assert all(any(job is j for j in JOBS) for job in delivered)  # the caller's own jobs
    assert threads == {threading.get_ident()}  # rows are delivered on the caller's thread
    assert [len(n.samples_ms) for n in nets] == [FAST.rounds] * 3 and all(n.ms > 0 for n in nets)
    # in the order asked: resnet20 at 32x32 costs ~80x resnet20 at 8x8 and a quarter width
    assert nets[0].ms > 5 * nets[1].ms and nets[2].ms > 5 * nets[1].ms
    assert runner.settings()["rpc_key"] == "two" and runner.settings()["tune_trials"] == 0
    assert runner.width_alignment() == 1


@pytest.mark.slow
def test_a_server_lost_mid_sweep_costs_nothing(tracker_port: int,
                                              caplog: pytest.LogCaptureFixture) -> None:
    got: list[tuple[Job, Measurement]] = []
    with rpc_servers.servers(tracker_port, "flaky", 2) as procs:
        def on_result(job: Job, measurement: Measurement) -> None:
            got.append((job, measurement))
            if len(got) == 2:
                rpc_servers.kill(procs[0])  # one board disappears while others are in flight

        TrackerRunner(board("flaky"), f"127.0.0.1:{tracker_port}", FAST,
                      progress=False).run(JOBS, on_result)
    assert "server lost" in caplog.text and "re-queued" in caplog.text
    chains = [j.chain for j, _m in got]
    assert collections.Counter(chains) == collections.Counter(CHAINS)  # each once, none lost
    assert all(m.ms > 0 and len(m.samples_ms) == FAST.rounds for _j, m in got)


@pytest.mark.slow
def test_all_servers_lost_keeps_what_arrived(tracker_port: int) -> None:
    got: list[Job] = []
    with rpc_servers.servers(tracker_port, "doomed", 1) as procs:
        def on_result(job: Job, measurement: Measurement) -> None:
            got.append(job)
            rpc_servers.kill(procs[0])

        runner = TrackerRunner(board("doomed"), f"127.0.0.1:{tracker_port}", FAST,
                               progress=False)
        with pytest.raises(PerfStudentError, match="was lost: 1 rows were stored"):
            runner.run(JOBS[:4], on_result)
    assert len(got) == 1


def test_no_server_for_the_key_and_bad_addresses(tracker_port: int) -> None:
    runner = TrackerRunner(board("nobody"), f"127.0.0.1:{tracker_port}", FAST, progress=False)
    with pytest.raises(PerfStudentError, match="perfstudent serve --tracker"):
        runner.run(JOBS[:1], lambda j, m: None)
    with pytest.raises(PerfStudentError, match="perfstudent serve --tracker"):
        runner.time_models([SPEC])
    assert runner.time_models([]) == []  # nothing asked: no tracker round trip needed
    for bad in ("localhost", "host:port", ":9190", "h:70000"):
        with pytest.raises(InputError, match="HOST:PORT"):
            parse_tracker(bad)
    unused = rpc_servers.free_port()
    with pytest.raises(PerfStudentError, match="cannot reach the TVM RPC tracker"):
        TrackerRunner(board("x"), f"127.0.0.1:{unused}", FAST, progress=False).run(
            JOBS[:1], lambda j, m: None)


def test_make_tracker_runner_checks_backend_and_options() -> None:
    pi4 = get_device("pi4")
    with pytest.raises(InputError, match="--backend tvm"):
        make_tracker_runner("127.0.0.1:9190", pi4, "onnxruntime", FAST)
    with pytest.raises(InputError, match="unknown options"):
        make_tracker_runner("127.0.0.1:9190", pi4, "tvm", FAST, colour="red")
    runner = make_tracker_runner("127.0.0.1:9190", pi4, "tvm", FAST, tune_trials=8)
    assert runner.key == "pi4" and runner.threads == 4 and runner.compiler == "aarch64-linux-gnu-g++"
    assert runner.settings()["tune_trials"] == 8 and "cortex-a72" in runner.settings()["target"]
    assert runner.width_alignment() == 1


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
