"""Device: a named target for measurements (how to reach it, its TVM target, its default threads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
