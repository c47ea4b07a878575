"""Any module in TVM: ONNX export -> ``relax.frontend.onnx.from_onnx`` -> build.

A chain of slot blocks or a whole student goes the same way (the ONNX export of
:func:`perfstudent.students.export.export_module_bytes`, as for ONNX Runtime):
:func:`onnx_module` returns the Relax module, its inputs and a tuning key that
depends only on the graph's structure (not on its random weights), so a block
tuned once is not tuned again when it is rebuilt with other weights.

:func:`compare_with_onnxruntime` runs one input through the TVM-compiled
student and through ONNX Runtime (same ONNX bytes) and returns both outputs,
the check behind ``perfstudent measure --backend tvm``.
"""

from __future__ import annotations

import hashlib
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


def structure_key(data: bytes) -> str:
    """sha256 of an ONNX model with its initialisers' values removed (names, shapes, types kept).

    Two exports of one architecture with different weights share the key: the
    key of a MetaSchedule tuning record, which depends only on the kernels.
    """
    import onnx

    model = onnx.load_model_from_string(data)
    for init in model.graph.initializer:
        dims, dtype, name = list(init.dims), init.data_type, init.name
        init.Clear()
        init.dims.extend(dims)
        init.data_type, init.name = dtype, name
    model.producer_version = ""
    model.doc_string = ""
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def input_specs(inputs: list[tuple[int, ...]]) -> list[InputSpec]:
    """The float32 inputs of an exported module (``input``, ``input1``, ... as the export names them)."""
    names = ["input"] + [f"input{i}" for i in range(1, len(inputs))]
    return [(name, tuple(shape), "float32") for name, shape in zip(names, inputs, strict=True)]


def onnx_module(module: nn.Module, inputs: list[tuple[int, ...]],
                ) -> tuple[Any, list[InputSpec], str]:
    """``module`` taking inputs of ``inputs`` shapes as (Relax module, its inputs, tuning key)."""
    from perfstudent.students.export import export_module_bytes

    data = export_module_bytes(module, inputs)
    return module_from_onnx(data), input_specs(inputs), structure_key(data)


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
