"""ONNX export of any student (opset >= 17)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from perfstudent.errors import InputError
from perfstudent.io import atomic_write_bytes
from perfstudent.students.widthspec import WidthSpec

DEFAULT_OPSET = 18


def export_onnx_bytes(model: nn.Module, spec: WidthSpec, batch: int = 1,
                      opset: int = DEFAULT_OPSET) -> bytes:
    """Serialise ``model`` (built from ``spec``) to a self-contained ONNX model.

    Uses the TorchScript-based exporter: it needs no onnxscript, is fast, and
    writes one file with the weights inside.
    """
    if opset < 17:
        raise InputError(f"opset must be >= 17, got {opset}")
    model = model.eval()
    example = torch.randn(batch, spec.in_channels, spec.input_size, spec.input_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter announces its own deprecation; it still works.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), buffer,  # type: ignore[arg-type]  # file-likes work
            opset_version=opset, dynamo=False, input_names=["input"], output_names=["logits"],
        )
    return buffer.getvalue()


def export_onnx(spec: WidthSpec, out: Path, model: nn.Module | None = None, batch: int = 1,
                opset: int = DEFAULT_OPSET) -> Path:
    """Write the student ``spec`` (or the given trained ``model``) to ``out``."""
    from perfstudent.students import build

    model = build(spec) if model is None else model
    atomic_write_bytes(Path(out), export_onnx_bytes(model, spec, batch, opset))
    return Path(out)
