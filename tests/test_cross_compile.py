"""Cross-compiling layers for the pi4 target (aarch64), checked under qemu against PyTorch."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from perfstudent.convshape import ConvShape
from perfstudent.errors import InputError
from perfstudent.profiler.devices import get_device

tvm = pytest.importorskip("tvm")

from perfstudent.profiler.tvm_support.build import (  # noqa: E402
    build_module,
    compiler_for,
    conv_module,
    export_shared,
    resolve_target,
)
from tests.test_tvm_backend import torch_reference  # noqa: E402

CXX = "aarch64-linux-gnu-g++"
needs_cross = pytest.mark.skipif(shutil.which(CXX) is None,
                                 reason=f"{CXX} absent (apt install g++-aarch64-linux-gnu)")
SHAPES = [
    ConvShape("conv2d", 8, 16, 12, 12, kernel=3, padding=1, epilogue="bn+add+relu"),
    ConvShape("conv2d", 8, 8, 9, 9, kernel=3, stride=2, padding=1, groups=2, epilogue="bn+relu"),
]


def elf_machine(path: Path) -> int:
    """ELF e_machine (bytes 18-19, little endian): 183 = AArch64, 62 = x86-64."""
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    return int.from_bytes(header[18:20], "little")


def test_pi4_uses_the_aarch64_cross_compiler() -> None:
    pi4 = get_device("pi4")
    assert compiler_for(resolve_target(pi4), pi4) == CXX
    assert compiler_for(resolve_target(get_device("x86"))) is None  # native: host g++


def test_missing_cross_compiler_names_the_package(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    executable = build_module(conv_module(SHAPES[0]), resolve_target(get_device("pi4")))
    monkeypatch.setenv("PATH", str(tmp_path))  # no compiler anywhere
    with pytest.raises(InputError, match=r"apt install g\+\+-aarch64-linux-gnu"):
        export_shared(executable, tmp_path / "m.so", CXX)


@needs_cross
def test_pi4_board_library_is_aarch64(tmp_path: Path) -> None:
    """The Relax VM library TrackerRunner uploads to a Pi (a LUT job: a chain of blocks
    through ONNX) is an AArch64 shared object."""
    from perfstudent.profiler.chains import chain_job
    from perfstudent.profiler.tvm_support.student import onnx_module
    from perfstudent.students import full_spec, get_family

    spec = full_spec("resnet20", input_size=8)
    chain = get_family("resnet20").slot_chains(spec)["layer1.1"].at(6)
    mod, _inputs, _key = onnx_module(*chain_job(spec, "layer1.1", chain).build())
    executable = build_module(mod, resolve_target(get_device("pi4")))
    path = export_shared(executable, tmp_path / "chain.so", CXX)
    assert elf_machine(path) == 183


@needs_cross
@pytest.mark.skipif(shutil.which("qemu-aarch64") is None or
                    shutil.which("aarch64-linux-gnu-gcc") is None,
                    reason="qemu-aarch64 or aarch64-linux-gnu-gcc absent (apt install qemu-user "
                           "gcc-aarch64-linux-gnu)")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_pi4_kernel_under_qemu_matches_pytorch(shape: ConvShape, tmp_path: Path) -> None:
    from perfstudent.profiler.tvm_support.build import conv_inputs
    from perfstudent.profiler.tvm_support.emulate import (
        build_layer_runner,
        cross_compile_kernel,
        run_kernel_emulated,
    )

    kernel = cross_compile_kernel(shape, resolve_target(get_device("pi4")),
                                  tmp_path / "kernel.so", CXX)
    runner = build_layer_runner(tmp_path / "layer_runner")
    assert elf_machine(kernel) == 183 and elf_machine(runner) == 183
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(dims).astype(np.float32) for _n, dims, _t in conv_inputs(shape)]
    got = run_kernel_emulated(kernel, runner, shape, arrays)
    np.testing.assert_allclose(got, torch_reference(shape, arrays), atol=1e-4, rtol=1e-4)


@needs_cross
def test_metaschedule_export_for_boards_links_aarch64() -> None:
    """The builder's f_export used when tuning on remote Pis writes an AArch64 object."""
    import functools
    import pickle

    from perfstudent.profiler.tvm_support.emulate import kernel_module
    from perfstudent.profiler.tvm_support.tuning import export_cross

    module = tvm.compile(kernel_module(SHAPES[0]), target=resolve_target(get_device("pi4")))
    path = Path(export_cross(CXX, module))
    try:
        assert elf_machine(path) == 183
    finally:
        shutil.rmtree(path.parent)
    pickle.dumps(functools.partial(export_cross, CXX))  # crosses into builder workers
