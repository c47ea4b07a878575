"""The ``tvm`` backend: Apache TVM 0.27 (Relax) builds of each ConvShape and whole students.

A ConvShape becomes a Relax function ``conv2d (+ bias) (+ residual) (+ relu)``
(BN is folded into the bias); ``relax.get_pipeline("zero")`` fuses it into one
kernel, ``tvm.compile`` builds it for the device's target and the Relax VM runs
it; :func:`perfstudent.profiler.tvm_support.timing.time_vm` times it with
``time_evaluator`` (in process or over RPC, same code).

**Untuned TVM rows are not representative**: TVM's default CPU schedules are
tens of times slower than tuned ones (64->64 3x3 at 56x56: ~100-140 ms untuned,
~3 ms after 512 MetaSchedule trials, vs ~2.6 ms in ONNX Runtime). Use
``tune_trials`` (CLI ``--tune-trials``) for latencies worth planning with; the
tuning state is part of :meth:`TvmBackend.settings`, so tuned and untuned rows
never share a fingerprint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perfstudent.errors import InputError
from perfstudent.profiler.backends import Backend, register_backend
from perfstudent.profiler.tvm_support.build import (
    build_module,
    conv_inputs,
    conv_module,
    random_inputs,
    resolve_target,
)
from perfstudent.profiler.tvm_support.timing import configure_threads, time_vm
from perfstudent.profiler.tvm_support.tuning import TuningState

if TYPE_CHECKING:
    from torch import nn

    from perfstudent.convshape import ConvShape
    from perfstudent.profiler.devices import Device
    from perfstudent.profiler.measurement import Measurement, TimingProtocol
    from perfstudent.students.widthspec import WidthSpec


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

    def time_shape(self, shape: ConvShape, protocol: TimingProtocol) -> Measurement:
        from tvm import relax

        mod = conv_module(shape)
        executable = build_module(mod, self.target, self.tuning, tune_key=shape.key())
        vm = relax.VirtualMachine(executable, self.dev)
        vm.set_input("main", *random_inputs(conv_inputs(shape), self.dev))
        return time_vm(vm, self.dev, protocol)

    def time_model(self, spec: WidthSpec, protocol: TimingProtocol,
                   model: nn.Module | None = None) -> Measurement:
        from tvm import relax

        from perfstudent.profiler.tvm_support.student import student_module

        mod, inputs = student_module(spec, model, batch=1)
        executable = build_module(mod, self.target, self.tuning, tune_key=None)
        vm = relax.VirtualMachine(executable, self.dev)
        vm.set_input("main", *random_inputs(inputs, self.dev))
        return time_vm(vm, self.dev, protocol)


def _foreign(target: Any) -> bool:
    """True if an llvm target's triple is not this machine's architecture."""
    import platform

    triple = str(target.attrs.get("mtriple", "") or "")
    if not triple:
        return False
    return not triple.startswith(platform.machine().replace("arm64", "aarch64"))


