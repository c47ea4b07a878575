"""ONNX Runtime backend (CPU execution provider).

A ConvShape becomes a one-layer ONNX graph built with ``onnx.helper``: ``Conv``
with a bias when BN is folded (the deployed form), then ``Add`` of a second
input for residual epilogues, then ``Relu``; a linear layer is ``Gemm``.
A whole student is exported with :func:`perfstudent.students.export.export_onnx_bytes`
(ORT folds its BNs and fuses Conv+Add+Relu the same way).

Any module (a chain of slot blocks, a whole student) is exported with the same
TorchScript-based exporter as a deployed student, so ORT applies the same
fusions to a LUT row as to the network it predicts.

Sessions use ``intra_op_num_threads = threads``, ``inter_op_num_threads = 1``,
``ORT_SEQUENTIAL`` and the graph optimisation level ``opt_level``, which is in
the fingerprint. Default ``all``, ORT's own default and what users deploy: it
runs convolutions in NCHWc channel blocks (1.6x faster than ``extended`` on
resnet20 here), and latency becomes a staircase in the channel count whose
steps the planner exploits (docs/profiler.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from perfstudent.errors import InputError
from perfstudent.profiler.backends import Backend, register_backend
from perfstudent.profiler.timing import CLOCKS, check_clock
from perfstudent.students.export import export_module_bytes

if TYPE_CHECKING:
    import onnx
    import onnxruntime as ort
    from torch import nn

    from perfstudent.convshape import ConvShape
    from perfstudent.profiler.backends import InputShapes
    from perfstudent.profiler.devices import Device
    from perfstudent.profiler.timing import BlockTimer, Item

OPT_LEVELS = ("disable", "basic", "extended", "all")
OPSET = 18
DEFAULT_OPT_LEVEL = "all"
#: MLAS pads NCHWc channel counts that are multiples of this; others fall back to NCHW kernels.
NCHWC_ALIGNMENT = 4


def shape_graph(shape: ConvShape) -> onnx.ModelProto:
    """A one-layer ONNX model of ``shape`` (inputs ``x`` and, for add epilogues, ``residual``)."""
    from onnx import TensorProto, helper, numpy_helper

    if shape.dtype != "float32":
        raise InputError(f"the onnxruntime backend times float32 layers, not {shape.dtype}")
    rng = np.random.default_rng(0)
    bias = shape.bias or "bn" in shape.epilogue
    if shape.op == "linear":
        x_dims, out_dims = [shape.batch, shape.cin], [shape.batch, shape.cout]
        w = rng.standard_normal((shape.cout, shape.cin), dtype=np.float32) * 0.05
        node = helper.make_node("Gemm", ["x", "w"] + (["b"] if bias else []), ["y0"], transB=1)
    else:
        x_dims = [shape.batch, shape.cin, shape.height, shape.width]
        out_dims = [shape.batch, shape.cout, shape.out_height, shape.out_width]
        w = rng.standard_normal((shape.cout, shape.cin // shape.groups, shape.kernel,
                                 shape.kernel), dtype=np.float32) * 0.05
        node = helper.make_node(
            "Conv", ["x", "w"] + (["b"] if bias else []), ["y0"], group=shape.groups,
            kernel_shape=[shape.kernel] * 2, strides=[shape.stride] * 2, pads=[shape.padding] * 4)
    inits = [numpy_helper.from_array(w, "w")]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(shape.cout).astype(np.float32), "b"))
    nodes, inputs, last = [node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_dims)], "y0"
    if "add" in shape.epilogue:
        inputs.append(helper.make_tensor_value_info("residual", TensorProto.FLOAT, out_dims))
        nodes.append(helper.make_node("Add", [last, "residual"], ["y1"]))
        last = "y1"
    if "relu" in shape.epilogue:
        nodes.append(helper.make_node("Relu", [last], ["y2"]))
        last = "y2"
    graph = helper.make_graph(nodes, "layer", inputs,
                              [helper.make_tensor_value_info(last, TensorProto.FLOAT, out_dims)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


@register_backend
class OrtBackend(Backend):
    """ONNX Runtime on the CPU. Options: ``opt_level`` (disable|basic|extended|all), ``clock``."""

    name = "onnxruntime"

    def __init__(self, device: Device, threads: int | None = None, **options: Any) -> None:
        super().__init__(device, threads, **options)
        unknown = set(options) - {"opt_level", "clock"}
        if unknown:
            raise InputError(f"unknown onnxruntime backend options: {', '.join(sorted(unknown))}")
        self.opt_level = str(options.get("opt_level", DEFAULT_OPT_LEVEL))
        if self.opt_level not in OPT_LEVELS:
            raise InputError(f"opt_level must be one of {', '.join(OPT_LEVELS)}, got {self.opt_level!r}")
        if device.kind != "cpu":
            raise InputError(f"the onnxruntime backend runs on CPU devices, not {device.kind}")
        self.clock = check_clock(str(options.get("clock", "wall")), self.threads, device.kind)

    def version(self) -> str:
        import onnxruntime as ort

        return str(ort.__version__)

    def settings(self) -> dict[str, Any]:
        settings = {"threads": self.threads, "inter_op_threads": 1, "execution_mode": "sequential",
                    "opt_level": self.opt_level, "provider": "CPUExecutionProvider",
                    "width_alignment": self.width_alignment()}
        return settings | ({"clock": self.clock} if self.clock != "wall" else {})

    def session(self, model_bytes: bytes) -> ort.InferenceSession:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.opt_level]
        opts.log_severity_level = 3
        return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])

    def width_alignment(self) -> int:
        """At ``all``, channel counts that are multiples of 4 run in NCHWc blocks, others do not."""
        return NCHWC_ALIGNMENT if self.opt_level == "all" else 1

    def block_timer(self) -> BlockTimer:
        return CLOCKS[self.clock]

    def _item(self, model_bytes: bytes) -> Item:
        sess = self.session(model_bytes)
        rng = np.random.default_rng(1)
        feeds = {i.name: rng.standard_normal(i.shape).astype(np.float32) for i in sess.get_inputs()}
        names = [o.name for o in sess.get_outputs()]
        return lambda: sess.run(names, feeds)

    def prepare(self, module: nn.Module, inputs: InputShapes) -> Item:
        return self._item(export_module_bytes(module, inputs))

    def prepare_shape(self, shape: ConvShape) -> Item:
        return self._item(shape_graph(shape).SerializeToString())
