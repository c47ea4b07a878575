"""Fisher saliency: golden values computed independently, the JSON file, identity checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from perfstudent.errors import InputError
from perfstudent.plan.saliency import Saliency, file_sha256, fisher_saliency
from perfstudent.students import build, full_spec, get_family


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(3, 4, 1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv2(self.act(self.bn(self.conv(x)))))
        return self.fc(h.mean(dim=(2, 3)))


def tiny_net() -> Tiny:
    torch.manual_seed(0)
    net = Tiny()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.3, 0.3)
        net.bn.running_var.uniform_(0.5, 2.0)
        net.bn.weight.uniform_(0.5, 1.5)
        net.bn.bias.uniform_(-0.2, 0.2)
    return net


def golden_tiny(net: Tiny, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Δ_c = 1/(2N) Σ_n (Σ_hw a·∂ℓ_n/∂a)², with a computed explicitly, one sample at a time."""
    total = torch.zeros(3, dtype=torch.float64)
    for n in range(x.shape[0]):
        pre = F.conv2d(x[n:n + 1], net.conv.weight, padding=1)
        bn = F.batch_norm(pre, net.bn.running_mean, net.bn.running_var, net.bn.weight, net.bn.bias,
                          training=False, eps=net.bn.eps)
        a = F.relu(bn).detach().requires_grad_(True)
        logits = net.fc(F.relu(net.conv2(a)).mean(dim=(2, 3)))
        (g,) = torch.autograd.grad(F.cross_entropy(logits, y[n:n + 1]), a)
        total += ((a * g).sum(dim=(2, 3))[0].double()) ** 2
    return total / (2 * x.shape[0])


def test_golden_value_on_a_tiny_network() -> None:
    net = tiny_net()
    torch.manual_seed(1)
    x, y = torch.randn(5, 2, 6, 6), torch.randint(0, 5, (5,))
    scores, n = fisher_saliency(net, {"s": "act"}, [(x[:3], y[:3]), (x[3:], y[3:])])
    assert n == 5
    expected = golden_tiny(net, x, y)
    assert expected.abs().sum() > 0
    assert torch.allclose(torch.tensor(scores["s"], dtype=torch.float64), expected, rtol=1e-5, atol=1e-12)
    assert all(p.grad is None for p in net.parameters())


def mask_gradient_saliency(model: nn.Module, path: str, channels: int, x: torch.Tensor,
                           y: torch.Tensor) -> torch.Tensor:
    """Σ_hw a·g is d ℓ_n / d m_c for a channel mask m (=1) multiplied onto a: no tensor hooks."""
    module = dict(model.named_modules())[path]
    total = torch.zeros(channels, dtype=torch.float64)
    for n in range(x.shape[0]):
        mask = torch.ones(channels, requires_grad=True)
        handle = module.register_forward_hook(
            lambda _m, _i, out, mask=mask: out * mask[None, :, None, None])
        loss = F.cross_entropy(model(x[n:n + 1]), y[n:n + 1])
        handle.remove()
        (g,) = torch.autograd.grad(loss, mask)
        total += g.double() ** 2
    return total / (2 * x.shape[0])


def test_matches_mask_gradient_on_resnet20() -> None:
    spec = full_spec("resnet20", 8, num_classes=4).with_widths({"layer2.1": 5})
    torch.manual_seed(2)
    model = build(spec).eval()
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 4, (4,))
    family = get_family("resnet20")
    paths = {s: family.slot_activation_path(s) for s in spec.widths}
    scores, _ = fisher_saliency(model, paths, [(x[:2], y[:2]), (x[2:], y[2:])])
    for slot in ("layer1.0", "layer2.1", "layer3.2"):
        expected = mask_gradient_saliency(model, paths[slot], spec.widths[slot], x, y)
        got = torch.tensor(scores[slot], dtype=torch.float64)
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-10), slot
    assert len(scores["layer2.1"]) == 5


def test_train_mode_leaves_the_model_untouched() -> None:
    net = tiny_net().eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(4, 2, 6, 6), torch.randint(0, 5, (4,))
    train_scores, _ = fisher_saliency(net, {"s": "act"}, [(x, y)], train_mode=True)
    eval_scores, _ = fisher_saliency(net, {"s": "act"}, [(x, y)])
    assert not net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert train_scores != eval_scores  # batch statistics differ from running statistics


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="no module"):
        fisher_saliency(tiny_net(), {"s": "nope"}, [])
    with pytest.raises(InputError, match="at least one batch"):
        fisher_saliency(tiny_net(), {"s": "act"}, [])


def test_json_roundtrip_and_checks(tmp_path: Path) -> None:
    spec = full_spec("resnet20")
    sal = Saliency("resnet20", 32, 3, 10, {s: [float(i) for i in range(w)] for s, w in spec.widths.items()},
                   {"run": "x", "sha256": "0" * 64}, batches=2, samples=128)
    path = tmp_path / "sal.json"
    sal.save(path)
    again = Saliency.load(path)
    assert again == sal and again.to_dict()["schema"] == "perfstudent.saliency/1"
    assert sal.kept(spec.widths) == 1.0
    assert sal.kept({**spec.widths, "layer1.0": 1}) == pytest.approx(1 - sum(range(15)) / sal_total(sal))
    sal.check_matches("resnet20", 32, get_family("resnet20").full_widths())
    with pytest.raises(InputError, match="not resnet56"):
        sal.check_matches("resnet56", 32, get_family("resnet56").full_widths())
    path.write_text('{"schema": "perfstudent.saliency/1", "family": "resnet20"}')
    with pytest.raises(InputError, match="malformed"):
        Saliency.load(path)
    path.write_text("[]")
    with pytest.raises(InputError, match="not a saliency file"):
        Saliency.load(path)


def sal_total(sal: Saliency) -> float:
    return sum(sum(v) for v in sal.slots.values())


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_an_image_folder_is_read_at_the_teachers_size(tmp_path: Path) -> None:
    """``saliency`` on an imagefolder teacher at 16 px reads the folder at 16 px (the folder's
    own default is 32, which the teacher would refuse)."""
    import numpy as np
    from PIL import Image

    from perfstudent import pipeline
    from tests._rundirs import write_run

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / "data" / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(
                    tmp_path / "data" / split / cls / f"{i}.png")
    spec = full_spec("resnet20", 16, 3, 2)
    teacher = write_run(tmp_path / "teacher", spec, acc=0.5, kind="train")
    sal = pipeline.saliency(teacher, f"imagefolder:{tmp_path / 'data'}", batches=2, batch_size=3,
                            progress=False)
    assert (sal.input_size, sal.in_channels, sal.num_classes, sal.samples) == (16, 3, 2, 6)
    sal.check_matches("resnet20", 16, get_family("resnet20").full_widths())
