"""ONNX export: the exported student runs in onnxruntime and matches PyTorch."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from perfstudent.students import build, full_spec
from perfstudent.students.export import export_onnx


@pytest.mark.parametrize(
    ("family", "kw"),
    [("resnet20", {}), ("wrn-16-2", {"in_channels": 1, "input_size": 28}),
     ("resnet18", {"input_size": 64, "num_classes": 10}), ("densenet-bc-40", {})],
)
def test_onnx_matches_pytorch(tmp_path: Path, family: str, kw: dict) -> None:
    rng = random.Random(1)
    base = full_spec(family, **kw)
    spec = base.with_widths({s: rng.randint(1, w) for s, w in base.widths.items()})
    torch.manual_seed(0)
    model = build(spec).eval()
    # Non-trivial BN statistics, so folding errors would show.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    out = export_onnx(spec, tmp_path / "m.onnx", model=model, batch=2)
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    x = torch.randn(2, spec.in_channels, spec.input_size, spec.input_size)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
