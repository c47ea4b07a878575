"""The ``tvm`` backend: Apache TVM 0.27 (Relax) builds of any module, timed by the shared protocol.

A module (a chain of slot blocks, a whole student) is exported to ONNX with the
same exporter as for ONNX Runtime, converted by ``relax.frontend.onnx``
(:func:`perfstudent.profiler.tvm_support.student.onnx_module`), fused by
``relax.get_pipeline("zero")``, built by ``tvm.compile`` for the device's target
and run by the Relax VM. The item handed to the interleaved protocol
(:mod:`perfstudent.profiler.timing`) is one ``invoke_stateful("main")`` with
random inputs set once by ``set_input``: no tensors are converted per call,
and the Python cost of a call (a few microseconds, measured at 2-3 us here
against ``time_evaluator``'s C++ loop) is the same kind of cost ONNX Runtime's
``session.run`` pays. On a GPU a block of calls ends with a device
synchronisation, so a sample covers the kernels, not their launches.

:meth:`TvmBackend.prepare_shape` keeps the single-layer Relax function
``conv2d (+ bias) (+ residual) (+ relu)`` (BN folded into the bias) of
:func:`perfstudent.profiler.tvm_support.build.conv_module`.

Remote boards are timed by ``perfstudent.profiler.remote.TrackerRunner`` with
TVM's ``time_evaluator`` (:func:`perfstudent.profiler.tvm_support.timing.time_vm`),
not by this backend.

**Untuned TVM rows are not representative**: TVM's default CPU schedules are
tens of times slower than tuned ones (64->64 3x3 at 56x56: ~100-140 ms untuned,
~3 ms after 512 MetaSchedule trials, vs ~2.6 ms in ONNX Runtime). Use
``tune_trials`` (CLI ``--tune-trials``) for latencies worth planning with; the
tuning state is part of :meth:`TvmBackend.settings`, so tuned and untuned rows
never share a fingerprint. A module is tuned once per graph structure (its
tuning key ignores the weights' values); the drift guard's canary is never tuned.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from perfstudent.convshape import ConvShape
from perfstudent.errors import InputError
from perfstudent.profiler.backends import Backend, register_backend
from perfstudent.profiler.tvm_support.build import (
    InputSpec,
    build_module,
    conv_inputs,
    conv_module,
    random_inputs,
    resolve_target,
)
from perfstudent.profiler.tvm_support.timing import configure_threads
from perfstudent.profiler.tvm_support.tuning import TuningState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from torch import nn

    from perfstudent.convshape import ConvShape
    from perfstudent.measurement import Measurement, TimingProtocol
    from perfstudent.profiler.backends import InputShapes
    from perfstudent.profiler.devices import Device
    from perfstudent.profiler.timing import BlockTimer, Item


@register_backend
class TvmBackend(Backend):
    """Apache TVM on a Device reached in this process (remote boards: ``remote.TrackerRunner``).

    Options: ``tune_trials`` (int, 0 = untuned), ``tuning_dir`` (Path; default
    next to the LUT, see :func:`perfstudent.profiler.tvm_support.tuning.default_tuning_dir`).
    """

    name = "tvm"

    def __init__(self, device: Device, threads: int | None = None, **options: Any) -> None:
        super().__init__(device, threads, **options)
        import tvm

        self.target = resolve_target(device)
        self.tuning = TuningState(self.target, options.get("tune_trials", 0),
                                  options.get("tuning_dir"))
        if device.kind == "cuda":
            self.dev = tvm.cuda(0)
            if not self.dev.exist:
                raise InputError("device 'cuda' needs an NVIDIA GPU with CUDA; none is visible "
                                 "here (check nvidia-smi)")
        else:
            if str(self.target.kind.name) != "llvm" or _foreign(self.target):
                raise InputError(
                    f"device {device.name!r} ({self.target.attrs.get('mtriple')}) cannot run in "
                    "this process; reach it through a TVM RPC tracker (--tracker HOST:PORT)")
            self.dev = tvm.cpu(0)
            configure_threads(self.threads)

    def version(self) -> str:
        import tvm

        return str(tvm.__version__)

    def settings(self) -> dict[str, Any]:
        return {"target": str(self.target), "pipeline": "zero"} | self.tuning.settings()

    def _item(self, executable: Any, inputs: list[InputSpec]) -> Item:
        """One ``invoke_stateful("main")`` of ``executable`` on random inputs set once."""
        from tvm import relax

        vm = relax.VirtualMachine(executable, self.dev)
        vm.set_input("main", *random_inputs(inputs, self.dev))
        return functools.partial(vm.invoke_stateful, "main")  # holds the VM and its inputs

    def prepare(self, module: nn.Module, inputs: InputShapes, tune_key: str | None = None) -> Item:
        """Export ``module`` to ONNX, convert, build (tuned per ``tune_key``) and load it in a VM.

        ``tune_key`` defaults to the sha256 of the ONNX graph's structure
        (:func:`perfstudent.profiler.tvm_support.student.structure_key`).
        """
        from perfstudent.profiler.tvm_support.student import onnx_module

        mod, specs, key = onnx_module(module, inputs)
        executable = build_module(mod, self.target, self.tuning, tune_key=tune_key or key)
        return self._item(executable, specs)

    def prepare_shape(self, shape: ConvShape) -> Item:
        """One layer as the Relax function of ``conv_module`` (tuned under ``shape.key()``)."""
        executable = build_module(conv_module(shape), self.target, self.tuning,
                                  tune_key=shape.key())
        return self._item(executable, conv_inputs(shape))

    def canary(self) -> Item:
        """The base class's canary layer, built untuned: a drift probe needs no tuning trials."""

        shape = ConvShape("conv2d", 32, 32, 16, 16, kernel=3, padding=1, epilogue="bn+relu")
        return self._item(build_module(conv_module(shape), self.target), conv_inputs(shape))

    def block_timer(self) -> BlockTimer:
        return _synced_block_timer(self.dev) if self.device.kind == "cuda" else super().block_timer()

    def measure(self, items: Sequence[Item], protocol: TimingProtocol) -> list[Measurement]:
        """The base protocol; without a canary (``canary_every = 0``) none is built."""
        if not protocol.canary_every:
            from perfstudent.profiler.timing import measure_interleaved

            return measure_interleaved(items, protocol, self.block_timer())
        return super().measure(items, protocol)


def _synced_block_timer(dev: Any) -> BlockTimer:
    """Wall seconds of ``inner`` calls on an asynchronous device, synchronised at both ends."""
    def timer(fn: Item, inner: int) -> float:
        dev.sync()
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        dev.sync()
        return time.perf_counter() - start

    return timer


def _foreign(target: Any) -> bool:
    """True if an llvm target's triple is not this machine's architecture."""
    import platform

    triple = str(target.attrs.get("mtriple", "") or "")
    if not triple:
        return False
    return not triple.startswith(platform.machine().replace("arm64", "aarch64"))
