"""Tiny MetaSchedule runs, databases kept and reused (a layer, and a chain through ONNX).

Slow: MetaSchedule's builder workers each import TVM (1-2 min on an idle 2-core machine;
4 trials took 14 min at load average 11 here).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from perfstudent.blockshape import Chain
from perfstudent.convshape import ConvShape
from perfstudent.measurement import TimingProtocol
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.chains import chain_job
from perfstudent.profiler.devices import get_device
from perfstudent.students import full_spec, get_family

pytest.importorskip("tvm")

FAST = TimingProtocol(warmup_s=0.0, block_s=0.005, rounds=3, extra_rounds=0, canary_every=0)
SHAPE = ConvShape("conv2d", 8, 8, 8, 8, kernel=3, padding=1, epilogue="bn+relu")


@pytest.mark.slow
def test_tuning_database_is_kept_and_reused(tmp_path: Path) -> None:
    backend = get_backend("tvm", get_device("local"), tune_trials=4, tuning_dir=tmp_path)
    m = backend.time_shape(SHAPE, FAST)
    assert m.ms > 0 and len(m.samples_ms) == FAST.rounds
    db = tmp_path / backend.settings()["tuning_db"]
    records = db / "database_tuning_record.json"
    assert records.stat().st_size > 0
    assert json.loads((db / "tuned.json").read_text()) == [SHAPE.key()]
    before = records.read_bytes()
    again = get_backend("tvm", get_device("local"), tune_trials=4, tuning_dir=tmp_path)
    start = time.perf_counter()
    assert again.time_shape(SHAPE, FAST).ms > 0
    assert records.read_bytes() == before  # applied from disk, not tuned again
    assert time.perf_counter() - start < 60


@pytest.mark.slow
def test_a_chain_is_tuned_once_per_structure(tmp_path: Path) -> None:
    """``prepare`` tunes an ONNX-converted chain under its structure key, once."""
    from perfstudent.profiler.tvm_support.student import onnx_module

    spec = full_spec("resnet20", input_size=8)
    block = get_family("resnet20").block_shapes(spec)["layer1.0"].at(6)
    job = chain_job(spec, "layer1.0", Chain(block, 2))
    backend = get_backend("tvm", get_device("local"), tune_trials=4, tuning_dir=tmp_path)
    m = backend.measure([backend.prepare(*job.build())], FAST)[0]
    assert m.ms > 0 and len(m.samples_ms) == FAST.rounds
    db = tmp_path / backend.settings()["tuning_db"]
    records = db / "database_tuning_record.json"
    assert records.stat().st_size > 0
    key = onnx_module(*job.build())[2]
    assert json.loads((db / "tuned.json").read_text()) == [key]
    before = records.read_bytes()
    start = time.perf_counter()
    again = backend.prepare(*job.build())  # new random weights, same structure
    assert backend.measure([again], FAST)[0].ms > 0
    assert records.read_bytes() == before  # applied from disk, not tuned again
    assert time.perf_counter() - start < 60
