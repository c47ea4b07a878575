"""Whole students in TVM: ONNX export -> ``relax.frontend.onnx.from_onnx`` -> build.

:func:`compare_with_onnxruntime` runs one input through the TVM-compiled
student and through ONNX Runtime (same ONNX bytes) and returns both outputs,
the check behind ``perfstudent measure --backend tvm``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from perfstudent.profiler.tvm_support.build import InputSpec

if TYPE_CHECKING:
    from torch import nn

    from perfstudent.students.widthspec import WidthSpec


def _onnx_bytes(spec: WidthSpec, model: nn.Module | None, batch: int) -> bytes:
    from perfstudent.students import build
    from perfstudent.students.export import export_onnx_bytes

    return export_onnx_bytes(build(spec) if model is None else model, spec, batch)


def module_from_onnx(data: bytes) -> Any:
    """A Relax IRModule (weights embedded as constants) from ONNX bytes."""
    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    return from_onnx(onnx.load_model_from_string(data), keep_params_in_input=False)


def student_module(spec: WidthSpec, model: nn.Module | None = None,
                   batch: int = 1) -> tuple[Any, list[InputSpec]]:
    """The student as a Relax module and its one input ``(batch, C, H, W)``."""
    mod = module_from_onnx(_onnx_bytes(spec, model, batch))
    dims = (batch, spec.in_channels, spec.input_size, spec.input_size)
    return mod, [("input", dims, "float32")]


def compare_with_onnxruntime(spec: WidthSpec, model: nn.Module | None = None, batch: int = 1,
                             target: Any = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Outputs (TVM, ONNX Runtime) of the same ONNX export of the student on one random input."""
    import onnxruntime as ort
    import tvm
    from tvm import relax

    from perfstudent.profiler.devices import host_target
    from perfstudent.profiler.tvm_support.build import build_module

    data = _onnx_bytes(spec, model, batch)
    x = np.random.default_rng(seed).standard_normal(
        (batch, spec.in_channels, spec.input_size, spec.input_size)).astype("float32")
    executable = build_module(module_from_onnx(data), tvm.target.Target(target or host_target()))
    dev = tvm.cpu(0)
    out = relax.VirtualMachine(executable, dev)["main"](tvm.runtime.tensor(x, dev))
    ours = (out[0] if isinstance(out, (list, tuple)) else out).numpy()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    theirs = session.run(None, {session.get_inputs()[0].name: x})[0]
    return np.asarray(ours), np.asarray(theirs)
