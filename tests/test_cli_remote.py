"""CLI: devices listing with reachability, tracker/serve bad inputs (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from perfstudent.cli import cli
from tests.rpc_servers import free_port


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_devices_lists_known_devices_and_reach(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["devices", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    by_name = {d["name"]: d for d in info["devices"]}
    assert {"local", "pi4", "x86", "cuda"} <= set(by_name)
    assert by_name["pi4"]["tvm_target"]["mcpu"] == "cortex-a72"
    assert "--tracker" in by_name["pi4"]["reachability"]
    assert by_name["local"]["reachability"].startswith("in this process")
    text = runner.invoke(cli, ["devices"])
    assert text.exit_code == 0 and "known devices:" in text.output and "pi4" in text.output


def test_devices_with_a_broken_toml_is_exit_2(runner: CliRunner, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "devices.toml"
    bad.write_text("[devices.b]\nreach = \"rpc\"\n")
    monkeypatch.setenv("PERFSTUDENT_DEVICES", str(bad))
    result = runner.invoke(cli, ["devices"])
    assert result.exit_code == 2 and "needs rpc_key" in result.output


@pytest.mark.parametrize("args", [
    ["serve", "--tracker", "nonsense", "--key", "pi4"],
    ["serve", "--tracker", "127.0.0.1:9190", "--key", ""],
    ["serve", "--tracker", "127.0.0.1:9190", "--key", "pi4", "--port", "9300", "--port-end",
     "9200"],
])
def test_serve_bad_inputs(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2 and result.output.count("error:") == 1


def test_serve_without_a_tracker_says_how_to_start_one(runner: CliRunner) -> None:
    port = free_port()
    result = runner.invoke(cli, ["serve", "--tracker", f"127.0.0.1:{port}", "--key", "pi4"])
    assert result.exit_code == 2 and "perfstudent tracker" in result.output


def test_tracker_on_a_busy_port_is_exit_2(runner: CliRunner) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        result = runner.invoke(cli, ["tracker", "--port", str(sock.getsockname()[1])])
    assert result.exit_code == 2 and "already listens" in result.output


def test_profile_pi4_off_the_board_says_both_ways(runner: CliRunner) -> None:
    from perfstudent.profiler.board import on_raspberry_pi4

    if on_raspberry_pi4():
        pytest.skip("this machine is a Raspberry Pi 4")
    result = runner.invoke(cli, ["profile", "--device", "pi4", "--backend", "tvm",
                                 "--arch", "resnet20"])
    assert result.exit_code == 2 and result.output.count("error:") == 1
    assert "on the board itself" in result.output and "--tracker HOST:PORT" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "torch", "--tune-trials", "4"], "applies to --backend tvm"),
    (["--backend", "onnxruntime", "--tracker", "127.0.0.1:9"], "needs --backend tvm"),
    (["--backend", "tvm", "--tracker", "nonsense"], "HOST:PORT"),
    (["--backend", "tvm", "--tune-trials", "-1"], "-1"),
])
def test_profile_remote_bad_inputs(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(cli, ["profile", "--arch", "resnet20", "--device", "pi4", *args])
    assert result.exit_code == 2 and message in result.output
