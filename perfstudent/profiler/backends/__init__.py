"""Backends: turn a ConvShape or a whole student into something timed on a Device.

One module per backend, each registering a :class:`Backend` subclass with
:func:`register_backend`. Tests parametrise over :func:`backend_names`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from perfstudent.errors import InputError

if TYPE_CHECKING:
    from torch import nn

    from perfstudent.convshape import ConvShape
    from perfstudent.profiler.devices import Device
    from perfstudent.profiler.measurement import Measurement, TimingProtocol
    from perfstudent.students.widthspec import WidthSpec


class Backend(ABC):
    """A runtime that times layers and whole networks on a Device.

    ``settings`` holds everything of the backend that changes a latency
    (threads, optimisation level, memory format, tuning state, ...); it goes
    into the fingerprint so rows of different settings never mix.
    """

    name: ClassVar[str]

    def __init__(self, device: Device, threads: int | None = None, **options: Any) -> None:
        self.device = device
        self.threads = device.default_threads if threads is None else threads
        if self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")
        self.options = options

    @abstractmethod
    def version(self) -> str:
        """The runtime's version string."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Latency-relevant settings (JSON-ready) recorded in the fingerprint."""

    @abstractmethod
    def time_shape(self, shape: ConvShape, protocol: TimingProtocol) -> Measurement:
        """Time one layer (conv + fused epilogue) with the timing protocol."""

    @abstractmethod
    def time_model(self, spec: WidthSpec, protocol: TimingProtocol,
                   model: nn.Module | None = None) -> Measurement:
        """Time a whole student end to end (``model`` if given, else built from ``spec``)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release sessions, threads or remote connections."""


_BACKENDS: dict[str, str] = {
    # name -> module that registers it (imported lazily: tvm and onnxruntime are heavy)
    "torch": "perfstudent.profiler.backends.torch_backend",
    "onnxruntime": "perfstudent.profiler.backends.ort_backend",
    "tvm": "perfstudent.profiler.backends.tvm_backend",
}
_CLASSES: dict[str, type[Backend]] = {}


def register_backend(cls: type[Backend]) -> type[Backend]:
    _CLASSES[cls.name] = cls
    return cls


def backend_names() -> list[str]:
    return list(_BACKENDS)


def get_backend(name: str, device: Device, threads: int | None = None, **options: Any) -> Backend:
    """Instantiate backend ``name`` for ``device`` (a clear error if unknown or not installed)."""
    if name not in _BACKENDS:
        raise InputError(f"unknown backend {name!r}; known: {', '.join(backend_names())}")
    if name not in _CLASSES:
        try:
            importlib.import_module(_BACKENDS[name])
        except ImportError as exc:
            raise InputError(f"backend {name!r} is not installed here ({exc})") from None
    return _CLASSES[name](device, threads, **options)
