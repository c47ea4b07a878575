"""The quickstart's embedded configuration is valid and sized as documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfstudent.experiment.config import validate
from perfstudent.experiment.quickstart import quickstart_defaults


@pytest.mark.parametrize("dataset", ["digits", "fashion-mnist"])
def test_defaults_validate(dataset: str, tmp_path: Path) -> None:
    cfg = validate(quickstart_defaults(dataset), "defaults", tmp_path)
    assert cfg["device"]["name"] == "local" and cfg["device"]["backend"] == "onnxruntime"
    assert cfg["device"]["threads"] == 1
    assert cfg["model"]["family"] == "resnet20" and cfg["data"]["dataset"] == dataset
    assert 2 <= len(cfg["experiment"]["budgets"]) <= 3
    assert cfg["experiment"]["strategies"] == ["perf", "pruned", "uniform"]
    # the sweep is not coarsened: a coarse LUT interpolates across the latency steps
    assert cfg["profile"]["tolerance"] == validate({"experiment": {"budgets": [0.5]}}, "x", tmp_path)[
        "profile"]["tolerance"]
    if dataset == "fashion-mnist":
        assert cfg["data"]["train_limit"] is not None  # a subset, to fit the time
