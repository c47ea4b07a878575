"""End-to-end latency of a whole student with the LUT's timing protocol; the named protocols."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from perfstudent.measurement import TimingProtocol
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device

if TYPE_CHECKING:
    from torch import nn

    from perfstudent.measurement import Measurement
    from perfstudent.students.widthspec import WidthSpec

#: Protocols by name (``--protocol``): ``default`` for LUTs, ``fast``/``smoke`` for tests
#: (their rows are valid measurements, only less repeatable).
PROTOCOLS = {
    "default": TimingProtocol(),
    "careful": TimingProtocol(warmup_s=0.2, block_s=0.01, rounds=25, extra_rounds=25),
    "quick": TimingProtocol(warmup_s=0.02, block_s=0.004, rounds=9, extra_rounds=9),
    "fast": TimingProtocol(warmup_s=0.01, block_s=0.002, rounds=5, extra_rounds=3, max_wait_s=1.0,
                           noise_threshold=0.5),
    "smoke": TimingProtocol(warmup_s=0.0, block_s=0.001, rounds=3, extra_rounds=0, max_wait_s=0.0,
                            canary_every=0, noise_threshold=1.0),
}


def measure_spec(spec: WidthSpec, device: str = "local", backend: str = "onnxruntime",
                 threads: int | None = 1, model: nn.Module | None = None,
                 protocol: TimingProtocol | None = None, **options: Any) -> Measurement:
    """Time the network ``spec`` (or ``model``) end to end on ``device`` with ``backend``."""

    be = get_backend(backend, get_device(device), threads, **options)
    try:
        return be.time_model(spec, protocol or TimingProtocol(), model)
    finally:
        be.close()
