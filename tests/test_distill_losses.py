"""Attention transfer and KD losses against independent numpy computations; hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from perfstudent.distill.hooks import FeatureCapture
from perfstudent.distill.losses import at_loss, attention_map, distill_loss, kd_loss
from perfstudent.errors import InputError
from perfstudent.students import build, full_spec, get_family


def _np_attention(x: np.ndarray) -> np.ndarray:
    """q = normalize_L2(mean_c x²) per sample, flattened — written out in numpy."""
    n = x.shape[0]
    a = (x.astype(np.float64) ** 2).mean(axis=1).reshape(n, -1)
    return a / np.maximum(np.sqrt((a**2).sum(axis=1, keepdims=True)), 1e-12)


def _np_avgpool_2x(x: np.ndarray) -> np.ndarray:
    """2×2 average pooling (what adaptive pooling to half the size does for even sizes)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def test_at_golden_value_same_size() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3, 4, 5, 5)).astype(np.float32)
    t = rng.normal(size=(3, 6, 5, 5)).astype(np.float32)
    expected = ((_np_attention(s) - _np_attention(t)) ** 2).mean()
    got = at_loss(torch.from_numpy(s), torch.from_numpy(t))
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert got.item() > 0


def test_at_golden_value_different_spatial_sizes() -> None:
    rng = np.random.default_rng(1)
    big = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    small = rng.normal(size=(2, 5, 4, 4)).astype(np.float32)
    expected = ((_np_attention(_np_avgpool_2x(big)) - _np_attention(small)) ** 2).mean()
    # either side may be the larger one; the loss is symmetric in that sense
    assert at_loss(torch.from_numpy(big), torch.from_numpy(small)).item() == pytest.approx(expected, rel=1e-5)
    assert at_loss(torch.from_numpy(small), torch.from_numpy(big)).item() == pytest.approx(expected, rel=1e-5)


def test_attention_map_is_unit_norm_and_hand_value() -> None:
    x = torch.zeros(1, 2, 1, 2)
    x[0, 0, 0, 0], x[0, 1, 0, 0], x[0, 0, 0, 1] = 3.0, 1.0, 2.0
    # mean_c x² = [(9+1)/2, 4/2] = [5, 2]; normalised: [5, 2]/sqrt(29)
    q = attention_map(x)
    assert torch.allclose(q, torch.tensor([[5.0, 2.0]]) / 29**0.5)


def test_beta_zero_is_plain_cross_entropy() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(6, 10), torch.randint(0, 10, (6,))
    feats = [torch.randn(6, 4, 3, 3)]
    other = [torch.randn(6, 8, 3, 3)]
    assert torch.equal(distill_loss(logits, y, feats, other, beta=0.0), F.cross_entropy(logits, y))
    assert torch.equal(distill_loss(logits, y), F.cross_entropy(logits, y))
    with_at = distill_loss(logits, y, feats, other, beta=1000.0)
    assert with_at.item() == pytest.approx(F.cross_entropy(logits, y).item()
                                           + 1000 * at_loss(feats[0], other[0]).item(), rel=1e-6)


def test_kd_golden_value() -> None:
    rng = np.random.default_rng(2)
    zs, zt = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    y = np.array([0, 3, 1, 4])
    T, alpha = 4.0, 0.9

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p_s, p_t = softmax(zs / T), softmax(zt / T)
    kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(axis=1).mean() * T * T
    ce = -np.log(softmax(zs)[np.arange(4), y]).mean()
    s_t, t_t = torch.from_numpy(zs), torch.from_numpy(zt)
    assert kd_loss(s_t, t_t, T).item() == pytest.approx(kl, rel=1e-9)
    total = distill_loss(s_t, torch.from_numpy(y), teacher_logits=t_t, beta=0.0, kd=True, alpha=alpha,
                         temperature=T)
    assert total.item() == pytest.approx((1 - alpha) * ce + alpha * kl, rel=1e-9)


def test_feature_capture_hooks_stage_outputs_without_changing_forward() -> None:
    spec = full_spec("resnet20", 8, 1, 10)
    model = build(spec).eval()
    paths = get_family("resnet20").stage_paths()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        plain = model(x)
        with FeatureCapture(model, paths) as cap:
            hooked = model(x)
            shapes = [tuple(f.shape) for f in cap.outputs()]
        expected3 = model.layer3(model.layer2(model.layer1(model.relu(model.bn1(model.conv1(x))))))
    assert torch.equal(plain, hooked)
    assert shapes == [(2, 16, 8, 8), (2, 32, 4, 4), (2, 64, 2, 2)]
    assert not model.layer1._forward_hooks  # removed on exit
    with FeatureCapture(model, paths) as cap, torch.no_grad():
        model(x)
        assert torch.allclose(cap.outputs()[2], expected3)
    with pytest.raises(InputError, match="no module"):
        FeatureCapture(model, ["layer9"])
