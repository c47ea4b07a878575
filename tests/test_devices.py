"""Named devices (local, pi4, x86, cuda) and user devices from devices.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfstudent.errors import InputError
from perfstudent.profiler.devices import PI4_TARGET, cuda_target, device_names, get_device

tvm = pytest.importorskip("tvm")


def test_builtin_devices_and_their_targets() -> None:
    assert {"local", "pi4", "x86", "cuda"} <= set(device_names())
    pi4 = get_device("pi4")
    assert pi4.default_threads == 4 and pi4.rpc_key == "pi4"
    target = tvm.target.Target(pi4.tvm_target)
    assert target.attrs["mtriple"] == "aarch64-linux-gnu" and target.attrs["mcpu"] == "cortex-a72"
    assert int(target.attrs["num-cores"]) == 4
    tag = tvm.target.Target("raspberry-pi/4b-aarch64")  # the same board, by TVM's tag
    assert tag.attrs["mcpu"] == PI4_TARGET["mcpu"]
    x86 = tvm.target.Target(get_device("x86").tvm_target)
    assert str(x86.kind.name) == "llvm"


def test_x86_mcpu_is_llvms_host_cpu() -> None:
    from tvm.target import codegen

    x86 = get_device("x86")
    assert x86.tvm_target is not None and not isinstance(x86.tvm_target, str)
    assert x86.tvm_target.get("mcpu") == codegen.llvm_get_system_cpu()


def test_cuda_target_by_arch() -> None:
    target = tvm.target.Target(cuda_target("sm_86"))
    assert str(target.kind.name) == "cuda" and target.attrs["arch"] == "sm_86"
    with pytest.raises(InputError):
        cuda_target("ampere")
    cuda = get_device("cuda")
    assert cuda.kind == "cuda" and cuda.properties["present"] == (cuda.properties["cuda_arch"]
                                                                   is not None)


TOML = """
[devices.lab-pi]
description = "Pi 4 on the bench"
reach = "rpc"
rpc_key = "lab-pi"
tvm_target = "raspberry-pi/4b-aarch64"
default_threads = 4
cross_compiler = "aarch64-linux-gnu-g++"

[devices.box]
tvm_target = { kind = "llvm", mcpu = "skylake", num-cores = 8 }
"""


def test_user_devices_from_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(TOML)
    monkeypatch.setenv("PERFSTUDENT_DEVICES", str(path))
    assert device_names()[-2:] == ["lab-pi", "box"]
    lab = get_device("lab-pi")
    assert (lab.reach, lab.rpc_key, lab.default_threads) == ("rpc", "lab-pi", 4)
    assert lab.properties["cross_compiler"] == "aarch64-linux-gnu-g++"
    assert get_device("box").tvm_target == {"kind": "llvm", "mcpu": "skylake", "num-cores": 8}


@pytest.mark.parametrize(("text", "message"), [
    ("[devices.a]\nreach = \"rpc\"\n", "needs rpc_key"),
    ("[devices.a]\ncolour = \"red\"\n", "unknown keys colour"),
    ("[devices.a]\nkind = \"tpu\"\n", "kind must be one of"),
    ("[devices.a]\ndefault_threads = 0\n", "default_threads"),
    ("[devices.a]\ntvm_target = \"llvm -mcpu=cortex-a72\"\n", "rejected by TVM >= 0.24"),
    ("[devices.a]\ntvm_target = { mcpu = \"x\" }\n", "needs kind"),
    ("[devices.a]\ntvm_target = { kind = \"nonsense-kind\" }\n", "TVM rejects"),
    ("[devices.pi4]\nkind = \"cpu\"\n", "built-in device"),
    ("[devices.a\n", "not valid TOML"),
    ("[other]\nx = 1\n", "only \\[devices.NAME\\]"),
])
def test_bad_devices_toml_is_a_clear_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 text: str, message: str) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(text)
    monkeypatch.setenv("PERFSTUDENT_DEVICES", str(path))
    with pytest.raises(InputError, match=message) as info:
        get_device("a")
    assert str(path) in str(info.value)


def test_missing_devices_file_named_by_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFSTUDENT_DEVICES", str(tmp_path / "nope.toml"))
    with pytest.raises(InputError, match="does not exist"):
        device_names()


def test_unknown_device() -> None:
    with pytest.raises(InputError, match="unknown device 'nope'"):
        get_device("nope")
