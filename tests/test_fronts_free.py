"""``benchmarks/fronts_free.py``'s plan step on a real, tiny setup: resnet20 at 8 px, a LUT with
rows written (not timed) for this machine's fingerprint, an (untrained) teacher run and its real
Fisher saliency on digits. Nothing is timed: the measure step is the benchmark's."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from perfstudent import pipeline
from perfstudent.lut import Fingerprint, LatencyTable
from perfstudent.plan.strategies import strategy_names
from perfstudent.profiler.backends import get_backend
from perfstudent.profiler.devices import get_device
from perfstudent.students import full_spec
from tests._rundirs import write_run
from tests.lut_helpers import fill_lut

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "fronts_free.py"
pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch_pruning") is None,
                                reason="needs the compare extra (pip install 'perfstudent[compare]')")


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fronts_free", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fronts_free"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, list[str]]:
    tmp = tmp_path_factory.mktemp("fronts_free")
    base = full_spec("resnet20", 8, 1, 10)  # digits: 8 px, 1 channel, 10 classes
    lut = tmp / "lut.sqlite"
    with LatencyTable.open(lut) as table:
        fill_lut(table, Fingerprint.for_backend(get_backend("onnxruntime", get_device("local"), 1)),
                 "resnet20", 8, in_channels=1)
    teacher = write_run(tmp / "teacher", base, acc=0.5, kind="train")
    pipeline.saliency(teacher, "digits", batches=2, batch_size=16, progress=False).save(tmp / "sal.json")
    args = ["--family", "resnet20", "--input-size", "8", "--teacher", str(teacher), "--saliency",
            str(tmp / "sal.json"), "--lut", str(lut), "--budgets", "4", "--steps", "plan",
            "--low", "1.02", "--high", "0.98",  # the synthetic rows: full is 1.12 x the smallest
            "--out-dir", str(tmp / "out")]
    bench().main(args)
    return json.loads((tmp / "out" / "plans_resnet20_8.json").read_text()), tmp, args


def test_every_strategy_and_enhanced_source_at_every_budget(
        planned: tuple[dict[str, Any], Path, list[str]]) -> None:
    data = planned[0]
    expected = {*strategy_names(), "pruned+enhance", "torch-pruning+enhance"}
    assert len(data["budgets_ms"]) == 4
    for budget in data["budgets_ms"]:
        rows = [r for r in data["plans"] if r["budget_ms"] == budget]
        assert {r["strategy"] for r in rows} == expected
        assert all("widths" in r for r in rows)  # every budget is above the smallest


def test_within_budget_and_shares_in_range(planned: tuple[dict[str, Any], Path, list[str]]) -> None:
    data = planned[0]
    assert data["smallest_ms"] < data["budgets_ms"][0] < data["budgets_ms"][-1] < data["full_ms"]
    full = full_spec("resnet20", 8, 1, 10).widths
    for r in data["plans"]:
        assert r["predicted_ms"] <= r["budget_ms"] * (1 + 1e-9), r["strategy"]
        assert 0 < r["saliency_kept"] <= 1 and 0 < r["channels_kept"] <= 1
        assert r["channels_kept"] == pytest.approx(sum(r["widths"].values()) / sum(full.values()))


def test_enhance_never_narrows_its_source(planned: tuple[dict[str, Any], Path, list[str]]) -> None:
    rows = {(r["strategy"], r["budget_ms"]): r for r in planned[0]["plans"]}
    for (strategy, budget), r in rows.items():
        if not strategy.endswith("+enhance"):
            continue
        src = rows[(strategy.removesuffix("+enhance"), budget)]
        assert all(r["widths"][s] >= w for s, w in src["widths"].items())
        assert r["channels_kept"] >= src["channels_kept"]
        assert r["channels_gained"] == sum(r["widths"].values()) - sum(src["widths"].values())
        assert r["source_predicted_ms"] == pytest.approx(src["predicted_ms"])


def test_a_rerun_does_nothing_and_the_table_reads_it(
        planned: tuple[dict[str, Any], Path, list[str]]) -> None:
    _data, tmp, args = planned
    out = tmp / "out" / "plans_resnet20_8.json"
    before = out.read_text()
    bench().main(args)
    assert out.read_text() == before
    text = (tmp / "out" / "fronts_free.md").read_text()
    assert "## resnet20 @8px" in text and "pruned+enhance" in text
    assert (tmp / "out" / "resnet20_8.png").stat().st_size > 0
