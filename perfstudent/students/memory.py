"""How much memory a student needs, estimated from its layers before anything is built.

``activations = batch · (input + Σ layer outputs) · 4 bytes`` (float32, every conv
and linear layer of :meth:`Family.layers`), ``weights = Σ layer parameters · 4 bytes``.
Training keeps the activations for the backward pass and a gradient of each
(×2), and the weights with their gradients and SGD momentum (×3). These are
lower bounds (batch-norm and ReLU outputs, workspaces and the runtime are not
counted), so a refusal is certain to be right: what is refused could not have
fitted.
"""

from __future__ import annotations

from perfstudent.resources import check_memory, format_bytes
from perfstudent.students.registry import get_family
from perfstudent.students.widthspec import WidthSpec

FLOAT_BYTES = 4


def activation_bytes(spec: WidthSpec, batch: int = 1) -> int:
    """``batch`` × (the input and every layer's output) × 4 bytes."""
    layers = get_family(spec.family).layers(spec, 1)
    per_image = spec.in_channels * spec.input_size ** 2
    for layer in layers:
        shape = layer.shape
        per_image += shape.cout * shape.out_height * shape.out_width
    return batch * per_image * FLOAT_BYTES


def weight_bytes(spec: WidthSpec) -> int:
    """Every conv and linear layer's weights (and biases) × 4 bytes."""
    total = 0
    for layer in get_family(spec.family).layers(spec, 1):
        s = layer.shape
        total += (s.cin // s.groups) * s.kernel * s.kernel * s.cout + (s.cout if s.bias else 0)
    return total * FLOAT_BYTES


def memory_bytes(spec: WidthSpec, batch: int = 1, training: bool = False) -> int:
    """The lower bound of the module docstring, for inference or (``training``) for SGD."""
    if training:
        return 2 * activation_bytes(spec, batch) + 3 * weight_bytes(spec)
    return activation_bytes(spec, batch) + weight_bytes(spec)


def check_fits_memory(spec: WidthSpec, batch: int = 1, training: bool = False,
                      what: str | None = None) -> None:
    """InputError, before anything is built, if ``spec`` at ``batch`` cannot fit in memory."""
    need = memory_bytes(spec, batch, training)
    label = what or (f"{'training' if training else 'running'} {spec.family} at input size "
                     f"{spec.input_size}, batch {batch}")
    check_memory(need, f"{label} ({format_bytes(activation_bytes(spec, batch))} of activations)")
