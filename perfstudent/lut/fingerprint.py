"""Fingerprint: everything that changes a latency (docs/design.md, glossary).

Device model and properties, OS/kernel, CPU governor, threads, backend and its
version, the backend's latency-relevant settings, dtype and batch. Its ``id``
is the first 16 hex digits of the SHA-256 of its canonical JSON; LUT rows
belong to exactly one fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from perfstudent.errors import InputError


class _Device(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def properties(self) -> dict[str, Any]: ...


class Measurer(Protocol):
    """What a fingerprint is taken of: a backend on a device (or a remote runner acting as one)."""

    @property
    def name(self) -> str: ...

    @property
    def threads(self) -> int: ...

    @property
    def device(self) -> _Device: ...

    def version(self) -> str: ...

    def settings(self) -> dict[str, Any]: ...

#: Device properties that do not change a latency (kept out of the hash).
_VOLATILE = ("cpu_count",)


@dataclass(frozen=True)
class Fingerprint:
    device: str
    device_model: str
    device_properties: dict[str, Any]
    backend: str
    backend_version: str
    settings: dict[str, Any]
    threads: int
    dtype: str = "float32"
    batch: int = 1
    os: str = ""
    kernel: str = ""
    governor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_backend(cls, backend: Measurer, dtype: str = "float32", batch: int = 1) -> Fingerprint:
        """The fingerprint of rows ``backend`` measures on its device."""
        dev = backend.device
        props = {k: v for k, v in dev.properties.items() if k not in _VOLATILE}
        return cls(
            device=dev.name, device_model=str(props.get("cpu_model") or dev.description),
            device_properties=props, backend=backend.name, backend_version=backend.version(),
            settings=dict(backend.settings()), threads=backend.threads,
            dtype=str(backend.settings().get("dtype", dtype)), batch=batch,
            os=str(props.get("os", "")), kernel=str(props.get("kernel", "")),
            governor=props.get("governor"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"invalid fingerprint record: {exc}") from None

    def canonical(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)

    @property
    def id(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:16]

    def label(self) -> str:
        """Short human form, e.g. ``local/onnxruntime 1.32.0/t1``."""
        return f"{self.device}/{self.backend} {self.backend_version}/t{self.threads}"

    def differences(self, other: Fingerprint) -> list[str]:
        """What differs, as ``"<field> <self> vs <other>"`` (settings flattened)."""
        mine, theirs = _flatten(self.to_dict()), _flatten(other.to_dict())
        out = []
        for key in sorted(set(mine) | set(theirs)):
            if key.startswith("settings.threads"):
                continue  # reported once as ``threads``
            if mine.get(key) != theirs.get(key):
                name = key.removeprefix("settings.").removeprefix("device_properties.")
                out.append(f"{name} {mine.get(key, '-')} vs {theirs.get(key, '-')}")
        return out


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
