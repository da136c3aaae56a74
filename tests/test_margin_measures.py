"""Jiang's margin-normalised measures as Dziugaite et al.'s code computes them, log(0), and equation numbers."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from landscape.analysis.measure_context import MeasureContext
from landscape.measures import REGISTRY, curvature, norms, outputs

MARGIN = ("inverse_margin", "log_spec_orig", "path_norm_over_margin")


def _net(w1, w2) -> nn.Module:
    """``x -> W2 relu(W1 x)``, no biases, float64."""
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 3, bias=False)).double().eval()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w1, dtype=torch.float64))
        net[2].weight.copy_(torch.tensor(w2, dtype=torch.float64))
    return net


W1, W2 = [[2.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 3.0], [0.0, 0.0]]


def _context(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> MeasureContext:
    ck = SimpleNamespace(model=net, loss_fn=nn.CrossEntropyLoss(), tensors=lambda split: (x, y),
                         meta={"data": {"split": {"train": list(range(len(y)))}}})
    return MeasureContext(ck, {"samples": len(y), "seed": 0})


def _margin_values(net, x, y) -> tuple[dict, dict]:
    out = dict(REGISTRY["inverse_margin"].compute(_context(net, x, y)))
    return {k: out[k] for k in MARGIN}, out["details"]


def test_margin_normalised_measures_by_hand():
    # x_i = (i/2, 0) with label 0: hidden (i, 0), logits (i, 0, 0), margin i, for i = 1..20 in a shuffled order
    i = torch.randperm(20, generator=torch.Generator().manual_seed(0)).double() + 1
    x = torch.stack([i / 2, torch.zeros(20, dtype=torch.float64)], 1)
    y = torch.zeros(20, dtype=torch.long)
    values, details = _margin_values(_net(W1, W2), x, y)
    # gamma: the k-th smallest margin, k = 20 // 10 = 2, so 2 (numpy's interpolated 10th percentile would be 2.9)
    assert details["gamma"] == pytest.approx(2.0) and details["k"] == 2 and details["negative"] is False
    assert outputs.output_measures(_net(W1, W2)(x).detach(), y)["margin_p10"] == pytest.approx(2.9)
    # spectral norms 2 and 3, squared Frobenius norms 5 and 10:
    # log(prod s^2 / gamma^2 * sum f^2 / s^2) = log(36 / 4 * (5/4 + 10/9)) = log(85 / 4)
    # path norm: squared weights on ones: relu(diag(4, 1) 1) = (4, 1) -> (4, 9, 0), sum 13
    assert values["inverse_margin"] == pytest.approx(1 / 4, rel=1e-6)
    assert values["log_spec_orig"] == pytest.approx(math.log(85 / 4), rel=1e-6)
    assert values["path_norm_over_margin"] == pytest.approx(13 / 4, rel=1e-6)
    assert details["invariant"] is True and details["note"] is None


def test_negative_and_zero_margins():
    # ten images, k = 1: the smallest margin -3 counts by its absolute value, as in the reference code
    logits = torch.tensor([[0.0, 3.0]] + [[float(j), 0.0] for j in range(1, 10)])
    g = outputs.margin_gamma(logits, torch.zeros(10, dtype=torch.long))
    assert g == {"gamma": 3.0, "k": 1, "n": 10, "negative": True}
    # three images at the origin have margin 0: the 2nd smallest of 20 is 0, so 1/gamma^2 is undefined
    x = torch.cat([torch.zeros(3, 2), torch.stack([torch.arange(1.0, 18.0), torch.zeros(17)], 1)]).double()
    values, details = _margin_values(_net(W1, W2), x, torch.zeros(20, dtype=torch.long))
    assert values == dict.fromkeys(MARGIN) and details["gamma"] == 0.0 and "gamma is 0" in details["note"]


def test_margin_measures_are_complexity_measures_of_the_reference_code():
    for name in MARGIN:
        spec = REGISTRY[name]
        assert spec.direction == 1 and "robust-generalization-measures" in spec.reference, name
    assert "weights" not in REGISTRY["inverse_margin"].tags  # logits only: invariant whatever is folded
    assert {"weights"} <= set(REGISTRY["log_spec_orig"].tags) & set(REGISTRY["path_norm_over_margin"].tags)


def test_an_all_zero_layer_gives_no_log_of_zero():
    spec = norms.spectral_measures(_net([[0.0, 0.0], [0.0, 0.0]], W2))
    assert spec["log_prod_spec"] is None and spec["log_sum_spec"] is None and spec["log_prod_frob"] is None
    assert "all-zero layer(s) 0.weight" in spec["note"] and spec["n_layers"] == 2
    assert norms.spectral_measures(nn.Sequential(nn.Flatten()))["note"].startswith("no layer weights")
    # a BatchNorm with gamma = 0 folds into an all-zero conv: the norms group says so instead of crashing
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3)).double().eval()
    with torch.no_grad():
        net[1].weight.zero_()
    x, y = torch.randn(20, 1, 1, 1, dtype=torch.float64), torch.arange(20) % 3
    ctx = _context(net, x, y)
    ctx.__dict__["init_state"] = net.state_dict()
    out = REGISTRY["log_prod_spec"].compute(ctx)
    assert out["log_prod_spec"] is None and "all-zero layer(s) 0.weight" in out["details"]["note"]
    assert out["path_norm"] is not None and math.isfinite(out["path_norm"])
    assert _margin_values(net, x, y)[0]["log_spec_orig"] is None


#: measure -> equation number in Dziugaite et al.'s reference code (ComplexityType), which numbers Jiang's appendix
EQUATIONS = {"num_params": 20, "inverse_margin": 22, "log_spec_orig": 30, "log_prod_spec": 32, "log_sum_spec": 35,
             "log_prod_frob": 37, "path_norm_over_margin": 43, "path_norm": 44, "pacbayes_init": 48,
             "pacbayes_orig": 49, "pacbayes_flatness": 53, "pacbayes_mag_init": 56, "pacbayes_mag_orig": 57,
             "pacbayes_mag_flatness": 61}


def test_equation_numbers_are_the_reference_codes():
    for name, eq in EQUATIONS.items():
        assert re.search(rf"Eq\. {eq}\b", REGISTRY[name].definition), name
    assert "square root of Eq. 40" in REGISTRY["dist_init"].definition  # Eq. 40 is the squared distance
    assert "Eq. 37" not in REGISTRY["fisher_rao"].definition and "Eq. 37" not in curvature.__doc__.split("their")[0]
    doc = (Path(__file__).resolve().parents[1] / "docs" / "measures.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in doc.splitlines() if line.startswith("| `")}
    for name, eq in EQUATIONS.items():
        assert re.search(rf"Eq\. {eq}\b", rows[name]), name
    assert "Eq." not in rows["fisher_rao"].replace("no equation number", "")
    assert "not size-adjusted" in doc or "No size adjustment" in doc
