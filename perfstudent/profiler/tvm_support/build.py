"""Relax modules for ConvShapes, their builds, and shared objects for remote boards."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perfstudent.errors import InputError

if TYPE_CHECKING:
    from perfstudent.convshape import ConvShape
    from perfstudent.profiler.devices import Device
    from perfstudent.profiler.tvm_support.tuning import TuningState

#: Debian/Ubuntu package of a cross compiler, by the compiler's name.
CROSS_PACKAGES = {"aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu",
                  "arm-linux-gnueabihf-g++": "g++-arm-linux-gnueabihf"}

InputSpec = tuple[str, tuple[int, ...], str]  # (name, shape, dtype)


def resolve_target(device: Device) -> Any:
    """The ``tvm.target.Target`` of ``device`` (this host's LLVM target if it names none)."""
    import tvm

    from perfstudent.profiler.devices import host_target

    spec = device.tvm_target if device.tvm_target is not None else host_target()
    try:
        return tvm.target.Target(spec)
    except Exception as exc:
        raise InputError(f"device {device.name!r}: TVM rejects target {spec!r}: "
                         f"{str(exc).strip().splitlines()[-1]}") from None


def conv_inputs(shape: ConvShape) -> list[InputSpec]:
    """Inputs of the layer function: x, weight, [bias], [residual] (NCHW / OI[HW])."""
    x: tuple[int, ...]
    if shape.op == "linear":
        x = (shape.batch, shape.cin)
        w: tuple[int, ...] = (shape.cout, shape.cin)
        out: tuple[int, ...] = (shape.batch, shape.cout)
        bias: tuple[int, ...] = (shape.cout,)
    else:
        x = (shape.batch, shape.cin, shape.height, shape.width)
        w = (shape.cout, shape.cin // shape.groups, shape.kernel, shape.kernel)
        out = (shape.batch, shape.cout, shape.out_height, shape.out_width)
        bias = (1, shape.cout, 1, 1)
    specs: list[InputSpec] = [("x", x, shape.dtype), ("w", w, shape.dtype)]
    if shape.bias or "bn" in shape.epilogue:
        specs.append(("b", bias, shape.dtype))
    if "add" in shape.epilogue:
        specs.append(("r", out, shape.dtype))
    return specs


def conv_module(shape: ConvShape) -> Any:
    """A Relax IRModule ``main(x, w[, b][, r]) = relu?(conv(x, w) + b + r)`` for ``shape``."""
    from tvm import relax

    bb = relax.BlockBuilder()
    params = {name: relax.Var(name, relax.TensorType(dims, dtype))
              for name, dims, dtype in conv_inputs(shape)}
    with bb.function("main", list(params.values())):
        with bb.dataflow():
            if shape.op == "linear":
                y = bb.emit(relax.op.matmul(params["x"], relax.op.permute_dims(params["w"])))
            else:
                y = bb.emit(relax.op.nn.conv2d(params["x"], params["w"], strides=shape.stride,
                                               padding=shape.padding, groups=shape.groups))
            for name in ("b", "r"):  # folded BN / conv bias, then the residual input
                if name in params:
                    y = bb.emit(relax.op.add(y, params[name]))
            if "relu" in shape.epilogue:
                y = bb.emit(relax.op.nn.relu(y))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


def fuse(mod: Any) -> Any:
    """Apply the "zero" pipeline (legalise + fuse): ``tvm.compile`` alone does not fuse."""
    from tvm import relax

    return relax.get_pipeline("zero")(mod)


def build_module(mod: Any, target: Any, tuning: TuningState | None = None,
                 tune_key: str | None = None, tune_on: tuple[Any, Any] | None = None) -> Any:
    """Fuse, optionally tune/apply the MetaSchedule database, compile for ``target``.

    ``tune_on``: MetaSchedule (builder, runner) for remote boards (default: this machine).
    """
    import tvm

    fused = fuse(mod)
    if tuning is not None and tuning.trials > 0:
        builder, runner = tune_on if tune_on is not None else (None, "local")
        fused = tuning.apply(fused, tune_key, runner=runner, builder=builder)
    elif "gpu" in [str(k) for k in target.keys]:
        fused = schedule_gpu(fused, target)
    return tvm.compile(fused, target=target)


def schedule_gpu(fused: Any, target: Any) -> Any:
    """Untuned GPU kernels need threads bound: dlight's default GPU schedules do that."""
    from tvm.s_tir import dlight as dl

    rules = (dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(),
             dl.gpu.Fallback())
    with target:
        return dl.ApplyDefaultSchedule(*rules)(fused)


def random_inputs(specs: list[InputSpec], dev: Any, seed: int = 0) -> list[Any]:
    """Tensors of standard-normal values on ``dev`` (local or an RPC session's device)."""
    import tvm

    rng = np.random.default_rng(seed)
    return [tvm.runtime.tensor(rng.standard_normal(dims).astype(dtype), dev)
            for _name, dims, dtype in specs]


def compiler_for(target: Any, device: Device | None = None) -> str | None:
    """The C++ compiler that links a shared object for ``target`` (None: the host's default).

    A device may name one (``properties["cross_compiler"]``); otherwise a
    triple of another architecture uses ``<triple>-g++``.
    """
    if device is not None and device.properties.get("cross_compiler"):
        triple = str(target.attrs.get("mtriple", "") or "")
        if triple and not triple.startswith(_host_arch()):
            return str(device.properties["cross_compiler"])
    triple = str(target.attrs.get("mtriple", "") or "") if str(target.kind.name) == "llvm" else ""
    if not triple or triple.startswith(_host_arch()):
        return None
    arch = triple.split("-")[0]
    return {"aarch64": "aarch64-linux-gnu-g++", "armv7l": "arm-linux-gnueabihf-g++",
            "armv7": "arm-linux-gnueabihf-g++"}.get(arch, f"{triple}-g++")


def _host_arch() -> str:
    return platform.machine().replace("arm64", "aarch64")


def export_shared(executable: Any, path: Path, compiler: str | None) -> Path:
    """Write ``executable`` as a shared object (cross-linked with ``compiler`` if given)."""
    from tvm.support import cc

    if compiler is None:
        if shutil.which("g++") is None and shutil.which("gcc") is None:
            raise InputError("exporting a TVM library needs a C++ compiler (apt install g++)")
        executable.export_library(str(path))
        return path
    if shutil.which(compiler) is None:
        package = CROSS_PACKAGES.get(compiler, f"the cross compiler providing {compiler}")
        raise InputError(f"cross compiler {compiler} not found; install it "
                         f"(Debian/Ubuntu: sudo apt install {package})")
    executable.export_library(str(path), fcompile=cc.cross_compiler(compiler))
    return path
