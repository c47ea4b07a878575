"""Devices: named descriptors of where latency is measured (docs/design.md, glossary).

A Device says what the hardware is, how it is reached (in this process, or a
TVM RPC key on a tracker), its TVM target and its default thread count.
``local`` is whatever this machine is, detected.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

from perfstudent.errors import InputError
from perfstudent.profiler.board import on_raspberry_pi4
from perfstudent.profiler.device import Device
from perfstudent.profiler.device_config import load_user_devices
from perfstudent.profiler.machine import cpu_model, machine_info

_DEVICES: dict[str, Callable[[], Device]] = {}


def register_device(name: str) -> Callable[[Callable[[], Device]], Callable[[], Device]]:
    """Register a factory that returns the Device ``name`` (detected lazily)."""

    def decorator(factory: Callable[[], Device]) -> Callable[[], Device]:
        if name in _DEVICES:
            raise ValueError(f"device {name!r} is already registered")
        _DEVICES[name] = factory
        return factory

    return decorator


def device_names() -> list[str]:
    """Built-in devices, then the user's (``devices.toml``)."""
    return list(_DEVICES) + [n for n in load_user_devices(set(_DEVICES)) if n not in _DEVICES]


def get_device(name: str) -> Device:
    """The Device ``name``: a registered one, else one from the user's ``devices.toml``."""
    if name in _DEVICES:
        return _DEVICES[name]()
    user = load_user_devices(set(_DEVICES))
    if name not in user:
        raise InputError(f"unknown device {name!r}; known: {', '.join(device_names())}")
    return user[name]


@register_device("local")
def _local() -> Device:
    info = machine_info()
    return Device(
        name="local", kind="cpu", description=f"this machine: {cpu_model()}",
        default_threads=1,  # tvm_target None: the tvm backend uses host_target()
        properties={k: info[k] for k in ("cpu_model", "arch", "logical_cores", "governor",
                                          "os", "kernel", "board")}
        | {"cpu_count": os.cpu_count()},
    )


# ---- named devices ---------------------------------------------------------------------

#: The Raspberry Pi 4's TVM target (the ``raspberry-pi/4b-aarch64`` tag spelled out).
PI4_TARGET: dict[str, Any] = {
    "kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72",
    "mattr": ["+neon"], "num-cores": 4,
}
AARCH64_CROSS_COMPILER = "aarch64-linux-gnu-g++"


def host_llvm_cpu() -> str | None:
    """LLVM's name for this CPU (``znver3``, ``skylake``...) from TVM's bundled LLVM, if any.

    Falls back to None (TVM's generic CPU) when TVM is not installed.
    """
    try:
        from tvm.target import codegen
    except ImportError:
        return None
    name = str(codegen.llvm_get_system_cpu())
    return None if name in ("", "generic") else name


def host_target(num_cores: int | None = None) -> dict[str, Any]:
    """The LLVM target dict of this machine (detected ``mcpu``, ``num-cores``)."""
    target: dict[str, Any] = {"kind": "llvm"}
    cpu = host_llvm_cpu()
    if cpu:
        target["mcpu"] = cpu
    target["num-cores"] = num_cores or os.cpu_count() or 1
    return target


def cuda_arch() -> str | None:
    """The first NVIDIA GPU's architecture as ``sm_XY`` (torch.cuda, else nvidia-smi), or None."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return f"sm_{major}{minor}"
    except ImportError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.strip().splitlines()[0] if out.strip() else ""
    return "sm_" + first.replace(".", "") if first.replace(".", "").isdigit() else None


def cuda_target(arch: str | None = None) -> dict[str, Any]:
    """TVM's cuda target for ``arch`` (``sm_86``; detected when None; ``sm_80`` if no GPU)."""
    arch = arch or cuda_arch() or "sm_80"
    if not (arch.startswith("sm_") and arch[3:].isdigit()):
        raise InputError(f"CUDA arch must look like sm_86, got {arch!r}")
    return {"kind": "cuda", "arch": arch}


@register_device("pi4")
def _pi4() -> Device:
    here = on_raspberry_pi4()
    return Device(
        name="pi4", kind="cpu",
        description="Raspberry Pi 4 Model B: 4x Cortex-A72 @1.5-1.8 GHz, NEON, aarch64",
        reach="local" if here else "rpc", rpc_key="pi4", tvm_target=dict(PI4_TARGET),
        default_threads=4,
        properties={"arch": "aarch64", "board": "raspberry-pi-4",
                    "cross_compiler": AARCH64_CROSS_COMPILER},
    )


@register_device("x86")
def _x86() -> Device:
    import platform

    here = platform.machine() in ("x86_64", "AMD64", "i686")
    return Device(
        name="x86", kind="cpu", description="an x86-64 CPU (this machine's LLVM target)",
        reach="local" if here else "rpc", rpc_key="x86", tvm_target=host_target(),
        default_threads=1, properties={"arch": "x86_64"},
    )


@register_device("cuda")
def _cuda() -> Device:
    """The first NVIDIA GPU (torch: CUDA events; tvm: cuda target), listed even when absent."""
    arch = cuda_arch()
    properties: dict[str, Any] = {"cuda_arch": arch, "present": arch is not None}
    description = "NVIDIA GPU (none detected here)"
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            description = f"GPU 0: {props.name}"
            properties |= {"cpu_model": props.name, "capability": f"{props.major}.{props.minor}",
                           "memory_bytes": int(props.total_memory), "cuda": torch.version.cuda}
    except ImportError:
        pass
    return Device(name="cuda", kind="cuda", description=description, reach="local",
                  rpc_key="cuda", tvm_target=cuda_target(arch), default_threads=1,
                  properties=properties)


def reachability(device: Device) -> str:
    """How ``device`` is reached from here, in words (for ``perfstudent devices``)."""
    remote = f"TVM RPC key {device.rpc_key or device.name!r} (pass --tracker HOST:PORT)"
    if device.kind == "cuda" and not device.properties.get("present", True):
        return f"no GPU here; {remote}"
    if device.reach == "local":
        return "in this process" + (f", or {remote}" if device.rpc_key else "")
    return remote


def describe_devices() -> list[dict[str, Any]]:
    """Every known device (built-in and user) as a dict with its ``reachability``."""
    out = []
    for name in device_names():
        try:
            device = get_device(name)
        except InputError as exc:  # e.g. a device that refuses to exist without its hardware
            out.append({"name": name, "kind": "?", "description": str(exc),
                        "reachability": "unavailable here"})
            continue
        out.append(device.to_dict() | {"reachability": reachability(device)})
    return out
