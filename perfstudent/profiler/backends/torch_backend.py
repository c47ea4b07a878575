"""PyTorch eager backend: ``torch.inference_mode``, explicit threads, optional channels-last.

Every module (a layer, a chain of slot blocks, a whole student) runs the same
way: ``torch.fx`` folds every BN into its conv
(``torch.fx.experimental.optimization.fuse``), ReLU and additions stay eager
ops, so a LUT row and the network it predicts execute the same kernels.

On a CUDA device blocks are timed with CUDA events after a synchronise; that
path is written but was not run on this CPU-only machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from perfstudent.errors import InputError
from perfstudent.profiler.backends import Backend, register_backend
from perfstudent.profiler.timing import CLOCKS, check_clock

if TYPE_CHECKING:
    from perfstudent.profiler.backends import InputShapes
    from perfstudent.profiler.devices import Device
    from perfstudent.profiler.timing import BlockTimer, Item

MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """The eval-mode model with every conv→BN pair folded into the conv (torch.fx)."""
    import warnings

    with warnings.catch_warnings():
        # the fx optimisation module touches torch.jit, which announces its deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.fx.experimental.optimization import fuse

        return fuse(model.eval(), inplace=False)


@register_backend
class TorchBackend(Backend):
    """PyTorch eager. Options: ``memory_format`` (contiguous|channels_last), ``dtype``, ``clock``."""

    name = "torch"

    def __init__(self, device: Device, threads: int | None = None, **options: Any) -> None:
        super().__init__(device, threads, **options)
        unknown = set(options) - {"memory_format", "dtype", "cudnn_benchmark", "clock"}
        if unknown:
            raise InputError(f"unknown torch backend options: {', '.join(sorted(unknown))}")
        self.memory_format = str(options.get("memory_format", "contiguous"))
        if self.memory_format not in MEMORY_FORMATS:
            raise InputError(f"memory_format must be one of {', '.join(MEMORY_FORMATS)}, "
                             f"got {self.memory_format!r}")
        self.dtype = str(options.get("dtype", "float32"))
        if self.dtype not in DTYPES:
            raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        self.cudnn_benchmark = bool(options.get("cudnn_benchmark", False))
        if device.kind == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device {device.name!r} needs CUDA, which this torch cannot see")
        self.torch_device = torch.device("cuda" if device.kind == "cuda" else "cpu")
        self.clock = check_clock(str(options.get("clock", "wall")), self.threads, device.kind)

    def version(self) -> str:
        return str(torch.__version__)

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"threads": self.threads, "memory_format": self.memory_format,
                                    "dtype": self.dtype, "mode": "eager+inference_mode",
                                    "device": self.torch_device.type}
        if self.torch_device.type == "cuda":
            settings["cudnn_benchmark"] = self.cudnn_benchmark
            settings["cuda"] = torch.version.cuda
        if self.clock != "wall":
            settings["clock"] = self.clock
        return settings

    def prepare(self, module: nn.Module, inputs: InputShapes) -> Item:
        torch.set_num_threads(self.threads)
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        fmt = MEMORY_FORMATS[self.memory_format]
        dtype = DTYPES[self.dtype]
        module = fold_batchnorm(module).to(self.torch_device, dtype)
        if fmt is torch.channels_last:
            module = module.to(memory_format=fmt)  # type: ignore[call-overload]
        moved = [torch.randn(*shape).to(self.torch_device, dtype) for shape in inputs]
        moved = [t.contiguous(memory_format=fmt) if t.dim() == 4 else t for t in moved]

        def call() -> object:
            with torch.inference_mode():
                return module(*moved)

        return call

    def block_timer(self) -> BlockTimer:
        return cuda_block_timer if self.torch_device.type == "cuda" else CLOCKS[self.clock]


def cuda_block_timer(fn: Callable[[], object], inner: int) -> float:
    """Seconds of ``inner`` back-to-back calls on the GPU, measured with CUDA events."""
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(inner):
        fn()
    end.record()
    end.synchronize()
    return float(start.elapsed_time(end)) / 1e3
