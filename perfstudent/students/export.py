"""ONNX export of any student (opsets :func:`supported_opsets`: 17 up to what torch's exporter writes)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from perfstudent.errors import InputError
from perfstudent.io import atomic_write_bytes
from perfstudent.students import build
from perfstudent.students.memory import check_fits_memory
from perfstudent.students.widthspec import WidthSpec

DEFAULT_OPSET = 18
MIN_OPSET = 17


def supported_opsets() -> range:
    """The opsets export writes: 17 up to the newest one torch's TorchScript exporter knows."""
    try:
        from torch.onnx import _constants

        high = int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET",
                           _constants.ONNX_MAX_OPSET))
    except (ImportError, AttributeError, TypeError, ValueError):
        high = DEFAULT_OPSET
    return range(MIN_OPSET, max(high, DEFAULT_OPSET) + 1)


def check_opset(opset: int) -> None:
    """InputError naming the supported range unless ``opset`` is in it."""
    supported = supported_opsets()
    if opset not in supported:
        raise InputError(f"opset {opset} is not supported: export writes opsets "
                         f"{supported.start}..{supported.stop - 1}")


def export_module_bytes(module: nn.Module, inputs: list[tuple[int, ...]],
                        opset: int = DEFAULT_OPSET, output: str = "output") -> bytes:
    """Serialise ``module`` (eval mode) taking inputs of ``inputs`` shapes to one ONNX model.

    Uses the TorchScript-based exporter: it needs no onnxscript, is fast, and
    writes one file with the weights inside. Inputs are named ``input``,
    ``input1``, ...
    """
    check_opset(opset)
    module = module.eval()
    examples = tuple(torch.randn(*shape) for shape in inputs)
    names = ["input"] + [f"input{i}" for i in range(1, len(inputs))]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter announces its own deprecation; it still works.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, examples, buffer,  # type: ignore[arg-type]  # file-likes work
            opset_version=opset, dynamo=False, input_names=names, output_names=[output],
        )
    return buffer.getvalue()


def export_onnx_bytes(model: nn.Module, spec: WidthSpec, batch: int = 1,
                      opset: int = DEFAULT_OPSET) -> bytes:
    """Serialise ``model`` (built from ``spec``) to a self-contained ONNX model."""
    return export_module_bytes(model, [(batch, spec.in_channels, spec.input_size, spec.input_size)],
                               opset, output="logits")


def export_onnx(spec: WidthSpec, out: Path, model: nn.Module | None = None, batch: int = 1,
                opset: int = DEFAULT_OPSET) -> Path:
    """Write the student ``spec`` (or the given trained ``model``) to ``out``.

    The opset and the memory the export needs are checked before anything is built.
    """
    check_opset(opset)
    if batch < 1:
        raise InputError(f"batch must be at least 1, got {batch}")
    check_fits_memory(spec, batch, what=f"exporting {spec.family} at input size {spec.input_size}, "
                                        f"batch {batch}")
    model = build(spec) if model is None else model
    atomic_write_bytes(Path(out), export_onnx_bytes(model, spec, batch, opset))
    return Path(out)
