"""Devices: named descriptors of where latency is measured (DESIGN §2 "Device").

A Device says what the hardware is, how it is reached (in this process, or a
TVM RPC key on a tracker), its TVM target and its default thread count.
``local`` is whatever this machine is, detected.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from perfstudent.errors import InputError


@dataclass(frozen=True)
class Device:
    name: str
    kind: str  # "cpu" | "cuda"
    description: str
    reach: str = "local"  # "local" | "rpc"
    rpc_key: str | None = None
    tvm_target: dict[str, Any] | str | None = None
    default_threads: int = 1
    properties: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "description": self.description,
            "reach": self.reach, "rpc_key": self.rpc_key, "tvm_target": self.tvm_target,
            "default_threads": self.default_threads, "properties": dict(self.properties),
        }


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
    return list(_DEVICES)


def get_device(name: str) -> Device:
    if name not in _DEVICES:
        raise InputError(f"unknown device {name!r}; known: {', '.join(device_names())}")
    return _DEVICES[name]()


@register_device("local")
def _local() -> Device:
    from perfstudent.profiler.machine import cpu_model, machine_info

    info = machine_info()
    return Device(
        name="local", kind="cpu", description=f"this machine: {cpu_model()}",
        default_threads=1,
        properties={k: info[k] for k in ("cpu_model", "arch", "logical_cores", "governor",
                                          "os", "kernel", "board")}
        | {"cpu_count": os.cpu_count()},
    )


@register_device("cuda")
def _cuda() -> Device:
    """The first CUDA GPU torch sees (torch backend only; CUDA-event timing)."""
    import torch

    if not torch.cuda.is_available():
        raise InputError("device 'cuda': torch sees no CUDA GPU here (this torch build: "
                         f"{torch.__version__}); run on a machine with a GPU and a CUDA torch")
    props = torch.cuda.get_device_properties(0)
    return Device(
        name="cuda", kind="cuda", description=f"GPU 0: {props.name}", default_threads=1,
        properties={"cpu_model": props.name, "capability": f"{props.major}.{props.minor}",
                    "memory_bytes": int(props.total_memory), "cuda": torch.version.cuda},
    )
