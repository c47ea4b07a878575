"""End-to-end latency of a whole student with the LUT's timing protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perfstudent.profiler.measurement import TimingProtocol

if TYPE_CHECKING:
    from torch import nn

    from perfstudent.profiler.measurement import Measurement
    from perfstudent.students.widthspec import WidthSpec

#: Protocols by name (``--protocol``): ``default`` for LUTs, ``fast``/``smoke`` for tests
#: (their rows are valid measurements, only less repeatable).
PROTOCOLS = {
    "default": TimingProtocol(),
    "fast": TimingProtocol(warmup_s=0.02, block_s=0.004, repeats=5, noise_threshold=0.5,
                           remeasure=0),
    "smoke": TimingProtocol(warmup_s=0.005, block_s=0.002, repeats=3, noise_threshold=1.0,
                            remeasure=0),
    "quick": TimingProtocol(warmup_s=0.05, block_s=0.01, repeats=9, noise_threshold=0.05,
                            remeasure=1),
    "careful": TimingProtocol(warmup_s=0.5, block_s=0.05, repeats=25),
}


def measure_spec(spec: WidthSpec, device: str = "local", backend: str = "onnxruntime",
                 threads: int | None = 1, model: nn.Module | None = None,
                 protocol: TimingProtocol | None = None, **options: Any) -> Measurement:
    """Time the network ``spec`` (or ``model``) end to end on ``device`` with ``backend``."""
    from perfstudent.profiler.backends import get_backend
    from perfstudent.profiler.devices import get_device

    be = get_backend(backend, get_device(device), threads, **options)
    try:
        return be.time_model(spec, protocol or TimingProtocol(), model)
    finally:
        be.close()
