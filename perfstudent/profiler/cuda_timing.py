"""Timing on an NVIDIA GPU with CUDA events (for the torch backend on the ``cuda`` device).

Host timers around asynchronous kernel launches measure the launch, not the
kernel. CUDA events recorded on the stream before and after a block of
``inner`` calls measure the GPU time of the block; ``elapsed_time`` is in ms.
Same protocol as on CPUs: time-based warm-up, ``repeats`` blocks of
``inner = ceil(block_s / c)`` calls, re-measured while IQR/median is too high.

UNTESTED on a GPU here (no GPU on the development machine): the code path is
complete, the tests check only the refusal without CUDA.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from perfstudent.errors import InputError
from perfstudent.profiler.measurement import Measurement, TimingProtocol


def _block_ms(fn: Callable[[], Any], inner: int) -> float:
    """Per-call GPU milliseconds of ``inner`` back-to-back calls of ``fn``."""
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(inner):
        fn()
    end.record()
    end.synchronize()
    return float(start.elapsed_time(end)) / inner


def time_cuda(fn: Callable[[], Any], protocol: TimingProtocol) -> Measurement:
    """Time ``fn`` (which launches work on the current CUDA stream) with CUDA events."""
    import torch

    if not torch.cuda.is_available():
        raise InputError("device 'cuda' needs an NVIDIA GPU and a CUDA build of PyTorch; "
                         "torch.cuda.is_available() is False here")
    torch.cuda.synchronize()
    estimate_ms = max(_block_ms(fn, 1), 1e-4)
    if protocol.warmup_s > 0:
        _block_ms(fn, max(1, math.ceil(protocol.warmup_s * 1e3 / estimate_ms)))
    inner = max(1, math.ceil(protocol.block_s * 1e3 / estimate_ms))
    measurement = None
    for _attempt in range(protocol.remeasure + 1):
        measurement = Measurement.from_repeats(
            [_block_ms(fn, inner) for _ in range(protocol.repeats)], inner, protocol.warmup_s)
        if measurement.rel_iqr <= protocol.noise_threshold:
            return measurement
    assert measurement is not None
    return Measurement.from_repeats(list(measurement.repeats_ms), inner, protocol.warmup_s,
                                    noisy=True)
