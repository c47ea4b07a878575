"""The tvm backend: Relax conv functions and ONNX-converted chains match PyTorch, timing
(the interleaved protocol in process, ``time_evaluator`` for boards), settings, whole students."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from perfstudent.blockshape import Chain
from perfstudent.convshape import ConvShape
from perfstudent.errors import InputError
from perfstudent.measurement import TimingProtocol
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.chains import Job, chain_job
from perfstudent.profiler.devices import get_device
from perfstudent.students import full_spec, get_family

tvm = pytest.importorskip("tvm")

from perfstudent.profiler.tvm_support.build import (  # noqa: E402 - after the importorskip
    build_module,
    conv_inputs,
    conv_module,
    random_inputs,
    resolve_target,
)

FAST = TimingProtocol(warmup_s=0.0, block_s=0.005, rounds=3, extra_rounds=0, canary_every=0)
SHAPES = [
    ConvShape("conv2d", 8, 16, 12, 12, kernel=3, padding=1, epilogue="bn+add+relu"),
    ConvShape("conv2d", 8, 8, 9, 9, kernel=3, stride=2, padding=1, groups=4, epilogue="bn+relu"),
    ConvShape("conv2d", 6, 4, 7, 7, kernel=1, bias=True, epilogue="relu"),
    ConvShape("conv2d", 4, 4, 5, 5, kernel=3, epilogue="add"),
    ConvShape("linear", 12, 5, 1, 1, bias=True),
]


SPEC = full_spec("resnet20", input_size=8)


def job(slot: str, width: int, neighbours: bool) -> Job:
    """The LUT job of ``slot`` at ``width``, between its neighbours or alone (resnet20 at 8x8)."""
    context = get_family(SPEC.family).slot_chains(SPEC)[slot].at(width)
    return chain_job(SPEC, slot, context if neighbours else Chain(context.block))


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
    assert len(m.samples_ms) == FAST.rounds and m.ms > 0 and m.inner >= 1
    assert m.estimator == FAST.estimator and not m.slow_ms
    # the figure is read from its own samples (no wall-clock assertion: the machine is shared)
    assert min(m.samples_ms) <= m.ms <= max(m.samples_ms)


@pytest.mark.parametrize(("slot", "width", "neighbours"), [("layer1.1", 5, True), ("layer2.0", 7, False)])
def test_chain_through_onnx_matches_pytorch(slot: str, width: int, neighbours: bool) -> None:
    """What ``prepare`` builds (ONNX export -> Relax -> build) computes the chain's output."""
    from tvm import relax

    from perfstudent.profiler.tvm_support.student import onnx_module

    module, inputs = job(slot, width, neighbours).build()
    mod, specs, _key = onnx_module(module, inputs)
    assert [dims for _n, dims, _t in specs] == inputs
    dev = tvm.cpu()
    vm = relax.VirtualMachine(build_module(mod, resolve_target(get_device("local"))), dev)
    args = random_inputs(specs, dev, seed=5)
    out = vm["main"](*args)
    out = (out[0] if isinstance(out, (list, tuple)) else out).numpy()
    with torch.no_grad():
        want = module(torch.from_numpy(args[0].numpy())).numpy()
    np.testing.assert_allclose(out, want, atol=1e-4, rtol=1e-4)


def test_tuning_key_follows_the_structure_not_the_weights() -> None:
    from perfstudent.profiler.tvm_support.student import onnx_module

    def key(slot: str, width: int, neighbours: bool) -> str:
        return onnx_module(*job(slot, width, neighbours).build())[2]

    first = key("layer1.1", 5, True)
    assert key("layer1.1", 5, True) == first  # rebuilt with other random weights: same key
    assert len({first, key("layer1.1", 6, True), key("layer1.1", 5, False),
                key("layer2.0", 5, False)}) == 4


def test_prepared_jobs_are_timed_together() -> None:
    """``prepare`` -> zero-argument calls that run the VM; ``measure`` times them interleaved."""
    backend = get_backend("tvm", get_device("local"), threads=1)
    jobs = [job("layer1.0", 4, False), job("layer1.1", 4, True), job("layer3.0", 20, False)]
    items = [backend.prepare(*j.build()) for j in jobs]
    assert all(item() is None for item in items)  # invoke_stateful: outputs stay in the VM
    ms = backend.measure(items, FAST)
    assert len(ms) == len(jobs)
    for m in ms:
        assert len(m.samples_ms) == FAST.rounds and m.ms > 0 and m.inner >= 1
        assert min(m.samples_ms) <= m.ms <= max(m.samples_ms)
    assert backend._guard is None  # canary_every = 0: no canary was built


def test_canary_guards_the_tvm_measurements() -> None:
    guarded = TimingProtocol(warmup_s=0.0, block_s=0.002, rounds=3, extra_rounds=2,
                             canary_every=1, noise_threshold=10.0)
    backend = get_backend("tvm", get_device("local"), threads=1)
    m = backend.measure([backend.prepare(*job("layer1.0", 3, False).build())], guarded)[0]
    assert backend._guard is not None and backend._guard.fn is not None
    # three baseline samples, then one canary sample after each of the item's samples
    assert len(backend._guard.samples) == 3 + len(m.samples_ms) + len(m.slow_ms)
    assert len(m.samples_ms) >= 3


def test_time_vm_takes_rounds_samples_and_flags_spread() -> None:
    """The boards' path: ``time_evaluator`` samples, ``rounds`` of them, noisy above threshold."""
    from tvm import relax

    from perfstudent.profiler.tvm_support.timing import time_vm

    dev = tvm.cpu()
    vm = relax.VirtualMachine(build_module(conv_module(SHAPES[2]),
                                           resolve_target(get_device("local"))), dev)
    vm.set_input("main", *random_inputs(conv_inputs(SHAPES[2]), dev))
    protocol = TimingProtocol(warmup_s=0.001, block_s=0.002, rounds=5, estimator="median",
                              noise_threshold=1e9)
    m = time_vm(vm, dev, protocol)
    assert len(m.samples_ms) == 5 and m.estimator == "median" and m.inner >= 1
    assert m.ms == pytest.approx(float(np.median(m.samples_ms))) and not m.noisy
    strict = time_vm(vm, dev, TimingProtocol(warmup_s=0.0, block_s=0.002, rounds=5,
                                             noise_threshold=0.0))
    assert strict.noisy == (strict.spread > 0.0)


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
        assert backend.time_shape(SHAPES[0], FAST).ms > 0
        item = backend.prepare(*job("layer1.1", 4, True).build())
        assert backend.measure([item], FAST)[0].ms > 0
    else:
        with pytest.raises(InputError, match="NVIDIA GPU"):
            get_backend("tvm", cuda)


def test_whole_student_matches_onnxruntime() -> None:
    from perfstudent.profiler.tvm_support.student import compare_with_onnxruntime

    spec = full_spec("resnet20").with_widths({"layer1.0": 5, "layer2.2": 7, "layer3.1": 9})
    ours, ort = compare_with_onnxruntime(spec)
    assert ours.shape == (1, spec.num_classes)
    np.testing.assert_allclose(ours, ort, atol=1e-4, rtol=0)


def test_time_model_of_a_student() -> None:
    spec = full_spec("resnet20").with_widths({"layer1.0": 4})
    m = get_backend("tvm", get_device("local")).time_model(spec, FAST)
    assert len(m.samples_ms) == FAST.rounds and m.ms > 0


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
