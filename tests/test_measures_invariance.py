"""Weight-based measures are functions of the network: BatchNorm folding and function-preserving rescaling."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from landscape.analysis.measure_context import MeasureContext
from landscape.measures import REGISTRY, norms
from landscape.measures.fold import fold_batchnorm
from landscape.models import create

#: model -> (registry name, keyword arguments, input px)
MODELS = {"cnn-small": ("cnn-small", {"width": 2}, 16),
          "resnet": ("resnet18", {"layers": [1, 1, 1, 1], "channels": [4, 4, 4, 4], "stem_width": 4}, 16)}
#: the groups whose values are weight-based (the rest read outputs, history or other records)
WEIGHT_GROUPS = ("norms", "fisher_rao", "pacbayes", "pacbayes_mag")


def _build(key: str, seed: int = 0) -> nn.Module:
    name, kwargs, size = MODELS[key]
    torch.manual_seed(seed)
    model = create(name, num_classes=3, in_chans=1, img_size=size, **kwargs).double().eval()
    with torch.no_grad():
        for m in model.modules():  # non-trivial BatchNorm: random statistics and affine parameters
            if isinstance(m, nn.BatchNorm2d):
                m.eps = 0.0  # so that the rescaling below is exactly function-preserving
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def _conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    leaves = [m for m in model.modules() if not list(m.children())]
    return [(a, b) for a, b in zip(leaves, leaves[1:]) if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)]


@torch.no_grad()
def _rescale(model: nn.Module, c: float) -> None:
    """Conv weights x c, BN mean x c, variance x c^2: exactly the same function (eps = 0)."""
    pairs = _conv_bn_pairs(model)
    assert pairs
    for conv, bn in pairs:
        conv.weight.mul_(c)
        bn.running_mean.mul_(c)
        bn.running_var.mul_(c * c)


def _context(model: nn.Module, init: dict, size: int) -> MeasureContext:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(32, 1, size, size, generator=gen, dtype=torch.float64)
    y = model(x).argmax(1)  # labels the model fits, flipped on a few images so the losses are not ~0
    y[:6] = (y[:6] + 1) % 3
    ck = SimpleNamespace(model=model, loss_fn=nn.CrossEntropyLoss(), tensors=lambda split: (x, y),
                         meta={"data": {"split": {"train": list(range(100))}}})
    settings = {"samples": 32, "seed": 0, "draws": 3, "depth": 8, "target": 0.1, "metric": "loss"}
    ctx = MeasureContext(ck, settings)
    ctx.__dict__["init_state"] = init  # the cached property, without an epoch_000.pt on disk
    return ctx


def _values(model: nn.Module, init: dict, size: int) -> dict:
    ctx = _context(model, init, size)
    out = {}
    for group in WEIGHT_GROUPS:
        spec = next(s for s in REGISTRY.values() if s.group == group)
        values = dict(spec.compute(ctx))
        values.pop("details")
        out.update(values)
    return out


@pytest.mark.parametrize("key", list(MODELS))
@pytest.mark.parametrize("c", [0.5, 3.0])
def test_rescaling_leaves_every_weight_based_measure_unchanged(key, c):
    size = MODELS[key][2]
    init = {k: v.clone() for k, v in _build(key, seed=1).state_dict().items()}
    model = _build(key)
    before = _values(model, init, size)
    x = torch.randn(4, 1, size, size, dtype=torch.float64)
    logits = model(x)
    raw_spec = norms.spectral_measures(model)["log_prod_spec"]
    _rescale(model, c)
    assert torch.allclose(model(x), logits, rtol=1e-10, atol=1e-10)  # the same function
    assert norms.spectral_measures(model)["log_prod_spec"] != pytest.approx(raw_spec, rel=1e-3)  # raw ones move
    after = _values(model, init, size)
    assert set(after) == {s.name for s in REGISTRY.values() if s.group in WEIGHT_GROUPS}
    for name, value in before.items():
        assert value is not None and math.isfinite(value), name
        assert after[name] == pytest.approx(value, rel=1e-6), name


@pytest.mark.parametrize("key", list(MODELS))
def test_folding_preserves_the_logits_and_removes_batchnorm(key):
    model = _build(key)
    folded = fold_batchnorm(model)
    x = torch.randn(5, 1, MODELS[key][2], MODELS[key][2], dtype=torch.float64)
    assert torch.allclose(folded.model(x), model(x), rtol=1e-10, atol=1e-10)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.model.modules())
    assert folded.unfolded == [] and len(folded.pairs) == len(_conv_bn_pairs(model))
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched


def test_folding_by_hand_and_weights_only_counts():
    conv, bn = nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2, eps=0.0)
    net = nn.Sequential(conv, bn, nn.Flatten(), nn.Linear(2, 1)).eval()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, -1.0]).reshape(2, 1, 1, 1))
        bn.running_mean.copy_(torch.tensor([1.0, 0.5]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25]))
        bn.weight.copy_(torch.tensor([3.0, 1.0]))
        bn.bias.copy_(torch.tensor([0.5, -1.0]))
    f = fold_batchnorm(net).model
    # s = gamma / sqrt(var) = (1.5, 2); W' = s W = (3, -2); b' = s (0 - mu) + beta = (-1.5 + 0.5, -1 - 1)
    assert f[0].weight.flatten().tolist() == pytest.approx([3.0, -2.0])
    assert f[0].bias.tolist() == pytest.approx([-1.0, -2.0])
    assert isinstance(f[1], nn.Identity)
    assert norms.num_params(f) == 2 + 2  # conv and linear weights; biases and BN left out


def test_layernorm_is_left_in_place_and_named():
    net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    folded = fold_batchnorm(net)
    assert folded.unfolded == ["1"] and folded.pairs == []
    assert folded.summary()["unfolded"] == ["1"]
