"""torch and onnxruntime backends: layers, chains of blocks, whole networks, settings, the timer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from perfstudent.convshape import ConvShape
from perfstudent.errors import InputError
from perfstudent.lut import Fingerprint
from perfstudent.measurement import TimingProtocol
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.profiler.measure import PROTOCOLS, measure_spec
from perfstudent.profiler.timing import measure_one, timed_seconds
from perfstudent.students import build, full_spec, get_family

FAST = PROTOCOLS["smoke"]
SHAPES = [
    ConvShape("conv2d", 3, 8, 8, 8, kernel=3, padding=1, epilogue="bn+relu"),
    ConvShape("conv2d", 8, 8, 8, 8, kernel=3, padding=1, epilogue="bn+add+relu"),
    ConvShape("conv2d", 8, 16, 8, 8, kernel=1, stride=2, epilogue="bn"),
    ConvShape("linear", 16, 10, 1, 1, bias=True),
]


@pytest.mark.parametrize("name", ["torch", "onnxruntime"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_time_shape(name: str, shape: ConvShape) -> None:
    backend = get_backend(name, get_device("local"), threads=1)
    m = backend.time_shape(shape, FAST)
    assert m.ms > 0 and len(m.samples_ms) == FAST.rounds and m.inner >= 1
    assert min(m.samples_ms) <= m.ms <= max(m.samples_ms)


@pytest.mark.parametrize("name", ["torch", "onnxruntime"])
def test_a_block_between_its_neighbours_runs(name: str) -> None:
    from perfstudent.blockshape import Chain
    from perfstudent.profiler.chains import chain_job

    spec = full_spec("resnet20", input_size=8)
    context = get_family("resnet20").slot_chains(spec)["layer2.1"].at(5)
    module, inputs = chain_job(spec, "layer2.1", context).build()
    assert len(module) == 3 and inputs == [(1, 16, 8, 8)]  # layer2.0 (downsampling) comes first
    x = torch.randn(*inputs[0])
    assert module(x).shape == (1, 32, 4, 4)
    assert [b.conv1.out_channels for b in module] == [32, 5, 32]  # neighbours at full width
    alone, alone_inputs = chain_job(spec, "layer2.1", Chain(context.block)).build()
    assert len(alone) == 1 and alone_inputs == [(1, 32, 4, 4)]
    backend = get_backend(name, get_device("local"), threads=1)
    m = backend.measure([backend.prepare(module, inputs)], FAST)[0]
    assert m.ms > 0 and len(m.samples_ms) == FAST.rounds


def test_ort_layer_graph_computes_the_fused_layer() -> None:
    import onnxruntime as ort
    from onnx import numpy_helper

    from perfstudent.profiler.backends.ort_backend import shape_graph

    shape = SHAPES[1]
    model = shape_graph(shape)
    weights = {i.name: numpy_helper.to_array(i).copy() for i in model.graph.initializer}
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 8, 8)).astype(np.float32)
    r = rng.standard_normal((1, 8, 8, 8)).astype(np.float32)
    (y,) = sess.run(None, {"x": x, "residual": r})
    ref = torch.relu(torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weights["w"]),
                                                torch.from_numpy(weights["b"]), padding=1)
                     + torch.from_numpy(r))
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-4, atol=1e-4)


def test_fold_batchnorm_keeps_outputs() -> None:
    from perfstudent.profiler.backends.torch_backend import fold_batchnorm

    spec = full_spec("resnet20", input_size=8)
    model = build(spec).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 8, 8)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["torch", "onnxruntime"])
def test_measure_spec_whole_student(name: str) -> None:
    spec = full_spec("resnet20", input_size=8).with_widths({"layer1.0": 3})
    m = measure_spec(spec, "local", name, threads=1, protocol=FAST)
    assert m.ms > 0 and len(m.samples_ms) == FAST.rounds


def test_settings_are_in_the_fingerprint() -> None:
    dev = get_device("local")
    a = Fingerprint.for_backend(get_backend("onnxruntime", dev, 1))
    b = Fingerprint.for_backend(get_backend("onnxruntime", dev, 1, opt_level="extended"))
    c = Fingerprint.for_backend(get_backend("torch", dev, 2, memory_format="channels_last"))
    assert a.settings["opt_level"] == "all" and a.settings["width_alignment"] == 4  # the default
    assert a.id != b.id and b.differences(a) == ["opt_level extended vs all", "width_alignment 1 vs 4"]
    assert c.threads == 2 and c.settings["memory_format"] == "channels_last"
    assert a.id == Fingerprint.for_backend(get_backend("onnxruntime", dev, 1)).id


@pytest.mark.parametrize(("name", "options"), [
    ("onnxruntime", {"opt_level": "max"}), ("onnxruntime", {"bogus": 1}),
    ("torch", {"memory_format": "nhwc"}), ("torch", {"dtype": "int3"}), ("nope", {})])
def test_bad_backend_settings(name: str, options: dict[str, object]) -> None:
    with pytest.raises(InputError):
        get_backend(name, get_device("local"), 1, **options)


def test_timer_protocol_counts_blocks_and_flags_noise() -> None:
    calls = []
    before = timed_seconds()
    protocol = TimingProtocol(warmup_s=0.0, block_s=0.001, rounds=4, canary_every=0)
    m = measure_one(lambda: calls.append(1), protocol)
    assert len(m.samples_ms) == 4 and m.inner >= 1 and len(calls) >= 2 + 4 * m.inner
    assert timed_seconds() > before
    # a deliberately uneven workload (alternating 1 and 20 units) is flagged noisy
    state = {"n": 0}

    def uneven() -> None:
        state["n"] += 1
        sum(range(20000 if state["n"] % 2 else 1000))

    noisy = measure_one(uneven, TimingProtocol(warmup_s=0.0, block_s=1e-9, rounds=6, canary_every=0,
                                               noise_threshold=0.01))
    assert noisy.noisy and noisy.inner == 1


def test_timer_agrees_with_torch_benchmark() -> None:
    from torch.utils.benchmark import Timer

    x = torch.randn(64, 64)
    torch.set_num_threads(1)
    ours = measure_one(lambda: x @ x, TimingProtocol(warmup_s=0.05, block_s=0.01, rounds=9))
    ref = Timer("x @ x", globals={"x": x}, num_threads=1).blocked_autorange(min_run_time=0.1)
    # Same order of magnitude only: the two timings run one after the other on a
    # shared machine, so a tight tolerance would test the neighbours' load, not the timer.
    ratio = ours.ms / (ref.median * 1e3)
    assert 0.25 <= ratio <= 4.0, ratio


def test_cuda_device_is_a_clear_error_without_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the error path does not apply")
    cuda = get_device("cuda")  # listed (TVM cross-builds, RPC key) but not runnable here
    assert cuda.kind == "cuda" and cuda.properties["present"] is False
    with pytest.raises(InputError, match="needs CUDA"):
        get_backend("torch", cuda)


@pytest.mark.parametrize("name", ["torch", "onnxruntime"])
def test_thread_cpu_clock(name: str) -> None:
    dev = get_device("local")
    backend = get_backend(name, dev, 1, clock="thread_cpu")
    fp = Fingerprint.for_backend(backend)
    assert fp.settings["clock"] == "thread_cpu"
    assert "clock" not in Fingerprint.for_backend(get_backend(name, dev, 1)).settings
    assert backend.time_shape(SHAPES[0], FAST).ms > 0
    with pytest.raises(InputError, match="needs --threads 1"):
        get_backend(name, dev, 2, clock="thread_cpu")
    with pytest.raises(InputError, match="clock must be one of"):
        get_backend(name, dev, 1, clock="sundial")
