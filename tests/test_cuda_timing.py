"""CUDA-event timing: measured on a GPU when one is present, a clear refusal otherwise."""

from __future__ import annotations

import pytest
import torch

from perfstudent.errors import InputError
from perfstudent.profiler.cuda_timing import time_cuda
from perfstudent.profiler.measurement import TimingProtocol

FAST = TimingProtocol(warmup_s=0.01, block_s=0.002, repeats=3, remeasure=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_refused_without_cuda() -> None:
    with pytest.raises(InputError, match="NVIDIA GPU"):
        time_cuda(lambda: None, FAST)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_conv_on_the_gpu() -> None:
    x = torch.randn(1, 64, 56, 56, device="cuda")
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).cuda().eval()
    with torch.inference_mode():
        m = time_cuda(lambda: conv(x), FAST)
    assert m.samples == 3 and m.median_ms > 0 and m.inner >= 1
