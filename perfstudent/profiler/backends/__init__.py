"""Backends: turn a ConvShape or a whole student into something timed on a Device.

One module per backend, each registering a :class:`Backend` subclass with
:func:`register_backend`. Tests parametrise over :func:`backend_names`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from perfstudent.convshape import ConvShape
from perfstudent.errors import InputError
from perfstudent.profiler.layer import ShapeModule, shape_input_shapes
from perfstudent.profiler.timing import DriftGuard, measure_interleaved, wall_block_timer
from perfstudent.resources import check_threads, cpu_count
from perfstudent.students import build

if TYPE_CHECKING:
    from collections.abc import Sequence

    from torch import nn

    from perfstudent.convshape import ConvShape
    from perfstudent.measurement import Measurement, TimingProtocol
    from perfstudent.profiler.devices import Device
    from perfstudent.profiler.timing import BlockTimer, DriftGuard, Item
    from perfstudent.students.widthspec import WidthSpec

#: Input shapes of a prepared module, e.g. ``[(1, 16, 32, 32)]``.
InputShapes = list[tuple[int, ...]]


class Backend(ABC):
    """A runtime that prepares modules (a layer, a chain of blocks, a network) and times them.

    ``settings`` holds everything of the backend that changes a latency
    (threads, optimisation level, memory format, tuning state, ...); it goes
    into the fingerprint so rows of different settings never mix. Everything a
    backend times goes through :meth:`measure`, the interleaved protocol of
    :mod:`perfstudent.profiler.timing` with this backend's canary, so a LUT
    row, a validated student and a measured student mean the same thing.
    """

    name: ClassVar[str]

    def __init__(self, device: Device, threads: int | None = None, **options: Any) -> None:
        self.device = device
        self.threads = device.default_threads if threads is None else threads
        check_device_threads(device, self.threads)
        self.options = options
        self._guard: DriftGuard | None = None

    @abstractmethod
    def version(self) -> str:
        """The runtime's version string."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """Latency-relevant settings (JSON-ready) recorded in the fingerprint."""

    @abstractmethod
    def prepare(self, module: nn.Module, inputs: InputShapes) -> Item:
        """``module`` made runnable on the device: a zero-argument call that runs it once."""

    def prepare_shape(self, shape: ConvShape) -> Item:
        """One layer (conv + fused epilogue) alone: the isolated row of the old LUTs."""

        return self.prepare(ShapeModule(shape), shape_input_shapes(shape))

    def width_alignment(self) -> int:
        """Channel counts the runtime treats alike modulo this (1: none; see the sweep)."""
        return 1

    def block_timer(self) -> BlockTimer:
        return wall_block_timer

    def canary(self) -> Item:
        """The drift guard's kernel: a fixed 32->32 3x3 conv at 16x16."""

        return self.prepare_shape(
            ConvShape("conv2d", 32, 32, 16, 16, kernel=3, padding=1, epilogue="bn+relu"))

    def guard(self, protocol: TimingProtocol) -> DriftGuard:
        """This backend's drift guard (created once; its canary history spans every measure)."""

        if self._guard is None:
            self._guard = DriftGuard(self.canary(), protocol, self.block_timer())
        return self._guard

    def measure(self, items: Sequence[Item], protocol: TimingProtocol) -> list[Measurement]:
        """Time ``items`` together with the interleaved protocol and this backend's drift guard."""

        return measure_interleaved(items, protocol, self.block_timer(), self.guard(protocol))

    def prepare_model(self, spec: WidthSpec, model: nn.Module | None = None, batch: int = 1) -> Item:
        """A whole student (``model`` if given, else built from ``spec``)."""

        shape = (batch, spec.in_channels, spec.input_size, spec.input_size)
        return self.prepare(build(spec) if model is None else model, [shape])

    def time_shape(self, shape: ConvShape, protocol: TimingProtocol) -> Measurement:
        """One layer alone, timed with the protocol."""
        return self.measure([self.prepare_shape(shape)], protocol)[0]

    def time_model(self, spec: WidthSpec, protocol: TimingProtocol,
                   model: nn.Module | None = None) -> Measurement:
        """A whole student end to end, timed with the protocol."""
        return self.measure([self.prepare_model(spec, model)], protocol)[0]

    def close(self) -> None:
        """Release sessions, threads or remote connections."""
        self._guard = None


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


def device_cpus(device: Device) -> int | None:
    """The CPUs that run ``device``'s threads: this machine's for a device reached in this
    process, a remote board's from its TVM target's ``num-cores`` (None if unknown)."""
    if device.reach == "local":
        return cpu_count()
    target = device.tvm_target
    cores = target.get("num-cores") if isinstance(target, dict) else None
    return cores if isinstance(cores, int) and not isinstance(cores, bool) and cores > 0 else None


def check_device_threads(device: Device, threads: int) -> None:
    """InputError unless ``1 <= threads <=`` the CPUs of ``device`` (:func:`device_cpus`)."""
    cpus = device_cpus(device)
    if cpus is None:  # a remote board of unknown size: the board itself decides
        if threads < 1:
            raise InputError(f"threads must be >= 1, got {threads}")
        return
    check_threads(threads, "--threads", cpus,
                  "this machine" if device.reach == "local" else f"device {device.name}")


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
