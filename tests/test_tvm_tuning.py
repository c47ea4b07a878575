"""A tiny MetaSchedule run, database kept and reused.

Slow: MetaSchedule's builder workers each import TVM (1-2 min on an idle 2-core machine;
4 trials took 14 min at load average 11 here).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from perfstudent.convshape import ConvShape
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.profiler.measurement import TimingProtocol

pytest.importorskip("tvm")

FAST = TimingProtocol(warmup_s=0.0, block_s=0.005, repeats=3, remeasure=0)
SHAPE = ConvShape("conv2d", 8, 8, 8, 8, kernel=3, padding=1, epilogue="bn+relu")


@pytest.mark.slow
def test_tuning_database_is_kept_and_reused(tmp_path: Path) -> None:
    backend = get_backend("tvm", get_device("local"), tune_trials=4, tuning_dir=tmp_path)
    m = backend.time_shape(SHAPE, FAST)
    assert m.median_ms > 0
    db = tmp_path / backend.settings()["tuning_db"]
    records = db / "database_tuning_record.json"
    assert records.stat().st_size > 0
    assert json.loads((db / "tuned.json").read_text()) == [SHAPE.key()]
    before = records.read_bytes()
    again = get_backend("tvm", get_device("local"), tune_trials=4, tuning_dir=tmp_path)
    start = time.perf_counter()
    assert again.time_shape(SHAPE, FAST).median_ms > 0
    assert records.read_bytes() == before  # applied from disk, not tuned again
    assert time.perf_counter() - start < 60
