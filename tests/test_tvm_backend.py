"""The tvm backend: Relax conv functions match PyTorch, timing, settings, whole students."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from perfstudent.convshape import ConvShape
from perfstudent.errors import InputError
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.profiler.measurement import TimingProtocol

tvm = pytest.importorskip("tvm")

from perfstudent.profiler.tvm_support.build import (  # noqa: E402 - after the importorskip
    build_module,
    conv_inputs,
    conv_module,
    random_inputs,
    resolve_target,
)

FAST = TimingProtocol(warmup_s=0.0, block_s=0.002, repeats=3, remeasure=0)
SHAPES = [
    ConvShape("conv2d", 8, 16, 12, 12, kernel=3, padding=1, epilogue="bn+add+relu"),
    ConvShape("conv2d", 8, 8, 9, 9, kernel=3, stride=2, padding=1, groups=4, epilogue="bn+relu"),
    ConvShape("conv2d", 6, 4, 7, 7, kernel=1, bias=True, epilogue="relu"),
    ConvShape("conv2d", 4, 4, 5, 5, kernel=3, epilogue="add"),
    ConvShape("linear", 12, 5, 1, 1, bias=True),
]


def torch_reference(shape: ConvShape, arrays: list[np.ndarray]) -> np.ndarray:
    """The layer computed independently by PyTorch from the same inputs."""
    names = [name for name, _d, _t in conv_inputs(shape)]
    t = {n: torch.from_numpy(a) for n, a in zip(names, arrays, strict=True)}
    if shape.op == "linear":
        y = F.linear(t["x"], t["w"], t.get("b"))
    else:
        y = F.conv2d(t["x"], t["w"], stride=shape.stride, padding=shape.padding,
                     groups=shape.groups)
        if "b" in t:
            y = y + t["b"]
    if "r" in t:
        y = y + t["r"]
    if "relu" in shape.epilogue:
        y = torch.relu(y)
    return y.numpy()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_conv_function_matches_pytorch(shape: ConvShape) -> None:
    from tvm import relax

    dev = tvm.cpu()
    executable = build_module(conv_module(shape), resolve_target(get_device("local")))
    args = random_inputs(conv_inputs(shape), dev, seed=3)
    out = relax.VirtualMachine(executable, dev)["main"](*args).numpy()
    want = torch_reference(shape, [a.numpy() for a in args])
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, atol=1e-4, rtol=1e-4)


def test_conv_is_fused_into_one_kernel() -> None:
    from perfstudent.profiler.tvm_support.build import fuse

    fused = fuse(conv_module(SHAPES[0]))
    prim_funcs = [gv.name_hint for gv, f in fused.functions.items()
                  if isinstance(f, tvm.tirx.PrimFunc)]
    assert len(prim_funcs) == 1 and "conv2d" in prim_funcs[0] and "relu" in prim_funcs[0]


def test_time_shape_returns_a_measurement() -> None:
    backend = get_backend("tvm", get_device("local"), threads=1)
    m = backend.time_shape(SHAPES[0], FAST)
    assert m.samples == FAST.repeats and m.median_ms > 0 and m.inner >= 1
    assert len(m.repeats_ms) == FAST.repeats
    # the row summarises its own repeats (no wall-clock assertion: the machine is shared)
    assert min(m.repeats_ms) <= m.median_ms <= max(m.repeats_ms)


def test_settings_separate_tuned_and_untuned(tmp_path) -> None:  # type: ignore[no-untyped-def]
    local = get_device("local")
    untuned = get_backend("tvm", local).settings()
    tuned = get_backend("tvm", local, tune_trials=64, tuning_dir=tmp_path).settings()
    assert untuned["tune_trials"] == 0 and untuned["tuning_db"] is None
    assert tuned["tune_trials"] == 64 and tuned["tuning_db"].endswith("-t64")
    assert tuned["target"] == untuned["target"] and "llvm" in tuned["target"]
    other = get_backend("tvm", local, tune_trials=128, tuning_dir=tmp_path).settings()
    assert other["tuning_db"] != tuned["tuning_db"]
    as_text = get_backend("tvm", local, tune_trials="64", tuning_dir=tmp_path).settings()
    assert as_text == tuned  # ``-o tune_trials=64`` arrives as text
    for bad in ("many", -1):
        with pytest.raises(InputError, match="tune_trials"):
            get_backend("tvm", local, tune_trials=bad)


def test_remote_only_devices_are_refused_in_process() -> None:
    with pytest.raises(InputError, match="--tracker"):
        get_backend("tvm", get_device("pi4"))


def test_cuda_is_built_only_when_a_gpu_is_present() -> None:
    cuda = get_device("cuda")
    if tvm.cuda(0).exist:
        backend = get_backend("tvm", cuda)
        assert backend.time_shape(SHAPES[0], FAST).median_ms > 0
    else:
        with pytest.raises(InputError, match="NVIDIA GPU"):
            get_backend("tvm", cuda)


def test_whole_student_matches_onnxruntime() -> None:
    from perfstudent.profiler.tvm_support.student import compare_with_onnxruntime
    from perfstudent.students import full_spec

    spec = full_spec("resnet20").with_widths({"layer1.0": 5, "layer2.2": 7, "layer3.1": 9})
    ours, ort = compare_with_onnxruntime(spec)
    assert ours.shape == (1, spec.num_classes)
    np.testing.assert_allclose(ours, ort, atol=1e-4, rtol=0)


def test_time_model_of_a_student() -> None:
    from perfstudent.students import full_spec

    spec = full_spec("resnet20").with_widths({"layer1.0": 4})
    m = get_backend("tvm", get_device("local")).time_model(spec, FAST)
    assert m.samples == FAST.repeats and m.median_ms > 0


def _modules(module):  # type: ignore[no-untyped-def]
    yield module
    for child in module.imports:
        yield from _modules(child)


def test_cuda_build_generates_kernels_without_a_gpu() -> None:
    """Building for the cuda target needs no GPU (dlight binds threads); running does."""
    from perfstudent.profiler.devices import cuda_target

    executable = build_module(conv_module(SHAPES[0]), tvm.target.Target(cuda_target("sm_86")))
    kinds = {m.kind for m in _modules(executable.mod)}
    assert "cuda" in kinds
    cuda = next(m for m in _modules(executable.mod) if m.kind == "cuda")
    source = cuda.inspect_source()
    assert "__global__" in source and "threadIdx" in source
