"""Check cross-compiled layers on this machine under qemu-user (correctness, never latency).

A board build is a Relax VM shared object that needs the TVM runtime on the
board. To check the *code* TVM generates for the board's target without a
board, the layer's single fused TIR kernel is cross-compiled to its own shared
object and called by ``layer_runner.c`` (a ~100-line C program, cross-compiled
too) under ``qemu-aarch64 -L /usr/aarch64-linux-gnu``. Emulated timings mean
nothing; outputs are compared with PyTorch's.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from perfstudent.convshape import ConvShape
from perfstudent.errors import InputError, PerfStudentError
from perfstudent.profiler.tvm_support.build import conv_inputs, conv_module, export_shared, fuse

RUNNER_SOURCE = Path(__file__).with_name("layer_runner.c")
SYSROOTS = {"aarch64": "/usr/aarch64-linux-gnu"}


def kernel_module(shape: ConvShape) -> Any:
    """The layer's fused TIR kernel alone, as an IRModule whose function is named ``layer``."""
    import tvm

    fused = fuse(conv_module(shape))
    kernels = [f for f in fused.functions.values() if isinstance(f, tvm.tirx.PrimFunc)]
    if len(kernels) != 1:
        raise InputError(f"{shape} does not fuse into one kernel ({len(kernels)} kernels)")
    return tvm.IRModule({"layer": kernels[0].with_attr("global_symbol", "layer")})


def cross_compile_kernel(shape: ConvShape, target: Any, out: Path, compiler: str) -> Path:
    """Cross-compile the layer's kernel for ``target`` into the shared object ``out``."""
    import tvm

    return export_shared(tvm.compile(kernel_module(shape), target=target), out, compiler)


def build_layer_runner(out: Path, c_compiler: str = "aarch64-linux-gnu-gcc") -> Path:
    """Compile ``layer_runner.c`` with ``c_compiler`` against TVM FFI's C headers."""
    import tvm_ffi

    if shutil.which(c_compiler) is None:
        raise InputError(f"{c_compiler} not found (Debian/Ubuntu: sudo apt install "
                         "gcc-aarch64-linux-gnu)")
    include = Path(tvm_ffi.__file__).parent / "include"
    cmd = [c_compiler, "-O1", "-std=c11", "-D_GNU_SOURCE", f"-I{include}", "-rdynamic",
           "-o", str(out), str(RUNNER_SOURCE), "-ldl"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PerfStudentError(f"building the layer runner failed: {proc.stderr.strip()}")
    return out


def run_kernel_emulated(kernel: Path, runner: Path, shape: ConvShape,
                        arrays: list[np.ndarray], arch: str = "aarch64") -> np.ndarray:
    """Run the kernel on ``arrays`` (the layer's inputs, in order) under qemu; its output."""
    qemu = shutil.which(f"qemu-{arch}")
    if qemu is None:
        raise InputError(f"qemu-{arch} not found (Debian/Ubuntu: sudo apt install qemu-user)")
    specs = conv_inputs(shape)
    if len(arrays) != len(specs):
        raise InputError(f"{shape} takes {len(specs)} inputs, got {len(arrays)}")
    work = kernel.parent
    args = []
    for (name, dims, _dtype), array in zip(specs, arrays, strict=True):
        path = work / f"{name}.bin"
        np.ascontiguousarray(array, dtype=np.float32).tofile(path)
        args.append(f"in:{path}:{'x'.join(map(str, dims))}")
    out_dims = (shape.batch, shape.cout, shape.out_height, shape.out_width)
    args.append(f"out:{work / 'out.bin'}:{'x'.join(map(str, out_dims))}")
    cmd = [qemu, "-L", SYSROOTS[arch], str(runner), str(kernel), "layer", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise PerfStudentError(f"emulated kernel failed ({proc.returncode}): {proc.stderr.strip()}")
    return np.fromfile(work / "out.bin", dtype=np.float32).reshape(out_dims)
