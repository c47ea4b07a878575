"""Student families: parameter counts, builds and ConvShape enumeration vs hooks."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from perfstudent.students import build, family_shapes, full_spec, get_family, network_layers

# (family, published parameter count, significant digits it was published with),
# each for the family's usual input and classes (CIFAR-10 or ImageNet-1k).
PUBLISHED = [
    ("resnet20", 0.27e6, 2),   # He et al. 2016, Table 6
    ("resnet56", 0.85e6, 2),
    ("wrn-40-2", 2.2e6, 2),    # Zagoruyko & Komodakis 2016
    ("resnet18", 11.69e6, 4),  # torchvision
    ("resnet34", 21.80e6, 4),
    ("densenet-bc-100", 0.8e6, 1),  # Huang et al. 2017 (k = 12)
]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _round_sig(x: float, digits: int) -> float:
    from math import floor, log10

    return round(x, -floor(log10(abs(x))) + digits - 1)


@pytest.mark.parametrize(("family", "published", "digits"), PUBLISHED)
def test_parameter_count_matches_published(family: str, published: float, digits: int) -> None:
    count = n_params(build(full_spec(family)))
    # Within 1% of the figure, or equal to it at the precision it was published with.
    assert abs(count - published) / published <= 0.01 or _round_sig(count, digits) == published


def _cifar_resnet_params(depth: int, classes: int = 10, cin: int = 3) -> int:
    """Independent count: He et al.'s CIFAR ResNet with 1x1-conv+BN projection shortcuts."""
    n = (depth - 2) // 6
    total = cin * 16 * 9 + 2 * 16  # stem conv + BN
    c_in = 16
    for c in (16, 32, 64):
        for _b in range(n):
            total += c_in * c * 9 + c * c * 9 + 4 * c  # two convs + two BNs
            if c_in != c:
                total += c_in * c + 2 * c  # projection conv + BN
            c_in = c
    return total + 64 * classes + classes


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_cifar_resnet_counts_are_option_a_plus_projections(depth: int) -> None:
    count = n_params(build(full_spec(f"resnet{depth}")))
    assert count == _cifar_resnet_params(depth)
    # He et al. publish option-A (parameter-free shortcut) counts: 0.27/0.46/0.66/0.85/1.7M.
    option_a = count - (16 * 32 + 2 * 32 + 32 * 64 + 2 * 64)
    published = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6}[depth]
    assert _round_sig(option_a, 2) == published


def test_torchvision_resnet18_parameter_names_and_count() -> None:
    model = build(full_spec("resnet18"))
    assert n_params(model) == 11_689_512  # torchvision.models.resnet18().parameters()
    keys = set(model.state_dict())
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.weight", "fc.bias"):
        assert key in keys
    assert len(keys) == 122  # torchvision resnet18 state_dict has 122 entries
    assert n_params(build(full_spec("resnet34"))) == 21_797_672


def _torchvision_resnet18_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision's ResNet-18 state-dict names and shapes, written out from its definition
    (``torchvision/models/resnet.py``: BasicBlock, ``downsample = Sequential(conv1x1, BN)`` in the
    first block of stages 2-4, ``fc = Linear(512, 1000)``), independently of our builder."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}

    def bn(name: str, c: int) -> None:
        shapes.update({f"{name}.weight": (c,), f"{name}.bias": (c,), f"{name}.running_mean": (c,),
                       f"{name}.running_var": (c,), f"{name}.num_batches_tracked": ()})

    bn("bn1", 64)
    cin = 64
    for stage, c in enumerate((64, 128, 256, 512), start=1):
        for block in (0, 1):
            p = f"layer{stage}.{block}"
            shapes[f"{p}.conv1.weight"] = (c, cin, 3, 3)
            bn(f"{p}.bn1", c)
            shapes[f"{p}.conv2.weight"] = (c, c, 3, 3)
            bn(f"{p}.bn2", c)
            if block == 0 and stage > 1:
                shapes[f"{p}.downsample.0.weight"] = (c, cin, 1, 1)
                bn(f"{p}.downsample.1", c)
            cin = c
    shapes.update({"fc.weight": (1000, 512), "fc.bias": (1000,)})
    return shapes


def test_a_torchvision_resnet18_state_dict_loads_strict() -> None:
    """A state dict with torchvision's names and shapes (not our model's own) loads with
    strict=True, and every value lands where its name says."""
    torch.manual_seed(0)
    theirs = {k: (torch.randint(0, 5, ()) if k.endswith("num_batches_tracked") else torch.randn(*shape))
              for k, shape in _torchvision_resnet18_shapes().items()}
    assert len(theirs) == 122
    model = build(full_spec("resnet18"))
    model.load_state_dict(theirs, strict=True)
    ours = model.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in theirs.items())


def _random_spec(family: str, rng: random.Random, **kw: int):  # type: ignore[no-untyped-def]
    spec = full_spec(family, **kw)
    return spec.with_widths({s: rng.randint(1, w) for s, w in spec.widths.items()})


def _hooked_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple]:
    captured: dict[str, tuple] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            def hook(mod: nn.Module, inputs: tuple, _out: torch.Tensor, name: str = name) -> None:
                t = inputs[0]
                if isinstance(mod, nn.Conv2d):
                    captured[name] = ("conv2d", t.shape[0], mod.in_channels, mod.out_channels,
                                      t.shape[2], t.shape[3], mod.kernel_size[0], mod.stride[0],
                                      mod.padding[0], mod.groups, mod.bias is not None)
                else:
                    captured[name] = ("linear", t.shape[0], mod.in_features, mod.out_features,
                                      1, 1, 1, 1, 0, 1, mod.bias is not None)
            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()
    return captured


CASES = [
    ("resnet20", {}), ("resnet32", {"input_size": 28, "in_channels": 1}), ("resnet56", {}),
    ("resnet110", {"input_size": 24}), ("wrn-16-2", {}), ("wrn-40-2", {"num_classes": 100}),
    ("wrn-22-3", {"input_size": 20}),
    ("resnet18", {"input_size": 64}), ("resnet34", {"input_size": 96, "num_classes": 7}),
    ("densenet-bc-100", {}), ("densenet-bc-40", {"input_size": 28, "in_channels": 1}),
]


@pytest.mark.parametrize(("family", "kw"), CASES)
@pytest.mark.parametrize("full", [True, False], ids=["full", "random"])
def test_conv_shapes_match_forward_hooks(family: str, kw: dict, full: bool) -> None:
    rng = random.Random(hash(family) % 1000)
    spec = full_spec(family, **kw) if full else _random_spec(family, rng, **kw)
    model = build(spec)
    batch = 2
    x = torch.randn(batch, spec.in_channels, spec.input_size, spec.input_size)
    hooked = _hooked_shapes(model, x)
    layers = network_layers(spec, batch=batch)
    assert [layer.path for layer in layers] == list(hooked)  # same layers, execution order
    for layer in layers:
        s = layer.shape
        assert (s.op, s.batch, s.cin, s.cout, s.height, s.width, s.kernel, s.stride, s.padding,
                s.groups, s.bias) == hooked[layer.path], layer.path
    out = model(x)
    assert out.shape == (batch, spec.num_classes)


@pytest.mark.parametrize("family", ["resnet20", "wrn-16-2", "resnet18", "densenet-bc-40"])
def test_slots_and_fixed_layers(family: str) -> None:
    spec = full_spec(family)
    fam = get_family(family)
    layers = network_layers(spec)
    slots = {layer.slot for layer in layers if layer.slot is not None}
    assert slots == set(spec.widths)
    roles = {layer.role for layer in layers}
    assert {"stem", "slot", "head"} <= roles
    for layer in layers:
        assert (layer.role == "slot") == (layer.slot is not None)
    # Each slot has two layers: its first conv's cout and its second conv's cin are the slot width.
    for slot, width in spec.widths.items():
        own = [layer.shape for layer in layers if layer.slot == slot]
        assert len(own) == 2 and own[0].cout == width and own[1].cin == width
        half = fam.slot_layers(spec, slot, max(1, width // 2))
        assert half[0].shape.cout == max(1, width // 2) and half[1].shape.cin == max(1, width // 2)
    # The activation path and stage paths name real modules.
    names = dict(build(spec).named_modules())
    for slot in spec.widths:
        assert isinstance(names[fam.slot_activation_path(slot)], nn.ReLU)
    for path in fam.stage_paths():
        assert path in names


def test_family_shapes_covers_every_width_once() -> None:
    shapes = family_shapes("resnet20")
    assert len(shapes) == len(set(shapes))
    # Any random spec's layers are all in the enumerated set.
    rng = random.Random(0)
    for _ in range(20):
        spec = _random_spec("resnet20", rng)
        assert {layer.shape for layer in network_layers(spec)} <= set(shapes)
    # Identical slots share rows: 16 widths x 2 convs x (stage1 + stage2-first + stage2-rest + ...)
    stage1 = {s for s in shapes if s.height == 32 and s.stride == 1 and s.cin <= 16 and s.cout <= 16}
    assert len(stage1) == 1 + 16 + 16  # stem + conv1(16->w) + conv2(w->16) per width; stem shares none
