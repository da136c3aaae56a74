"""Measures against independent exact answers (dense GGN, closed forms, hand computations)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev

from landscape.analysis.measures import analyze, measure_values
from landscape.measures import REGISTRY, curvature, norms, outputs, pacbayes
from landscape.models import create


def _dense_ggn_trace(model: nn.Module, x: torch.Tensor) -> float:
    """tr((1/N) sum_n J_n^T (diag p - p p^T) J_n) from the dense [N*C, P] Jacobian (float64)."""
    model = model.double().eval()
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    buffers = dict(model.named_buffers())

    def logits(flat):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            k = math.prod(s)
            params[n] = flat[i:i + k].reshape(s)
            i += k
        return functional_call(model, (params, buffers), (x.double(),))

    jac = jacrev(logits)(flat0)  # [N, C, P]
    p = torch.softmax(logits(flat0), 1)
    ggn = sum(jac[n].T @ (torch.diag(p[n]) - torch.outer(p[n], p[n])) @ jac[n] for n in range(len(x))) / len(x)
    return float(torch.trace(ggn))


@pytest.mark.parametrize("name,kwargs", [("mlp-tiny", {"img_size": 8}), ("cnn-tiny", {"channels": 4})])
def test_ggn_trace_matches_dense_ggn(name, kwargs):
    torch.manual_seed(0)
    model = create(name, num_classes=3, **kwargs).eval()
    if name == "cnn-tiny":  # non-trivial BatchNorm statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(5, 1, 8, 8)
    got = curvature.ggn_trace(model, x, chunk=2)
    want = _dense_ggn_trace(model, x)
    assert got["trace"] == pytest.approx(want, rel=1e-4)
    assert got["vjps"] == 15 and got["gradients"] == 3.0


def test_ggn_equals_hessian_for_a_linear_model():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3)).double()
    x, y = torch.randn(7, 1, 2, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    flat0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(flat):
        w, b = flat[:18].reshape(3, 6), flat[18:]
        return nn.functional.cross_entropy(x.flatten(1) @ w.T + b, y)

    hess = torch.func.hessian(loss)(flat0)
    assert curvature.ggn_trace(model, x)["trace"] == pytest.approx(float(torch.trace(hess)), rel=1e-9)


def test_fisher_rao_of_a_linear_model_by_hand():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False)).double()
    x, y = torch.randn(6, 1, 2, 2, dtype=torch.float64), torch.tensor([0, 1, 2, 2, 1, 0])
    f = model(x).detach()
    # f is linear in W, so <W, dCE/dW> = <dCE/df, f> = sum_c (p_c - onehot_c) f_c; one layer: (d+1)^2 = 4
    inner = ((torch.softmax(f, 1) - nn.functional.one_hot(y, 3)) * f).sum(1)
    got = curvature.fisher_rao_norm(model, x, y, chunk=4)
    assert got["depth"] == 1
    assert got["fisher_rao"] == pytest.approx(4 * float((inner**2).mean()), rel=1e-10)


class Quadratic(nn.Module):
    """'Model' whose output is its weight vector; with ``QuadLoss`` the loss is 0.5 w^T A w (minimum at 0)."""

    def __init__(self, dim: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(dim, dtype=torch.float64))

    def forward(self, x):
        return self.w.expand(len(x), -1)


class QuadLoss(nn.Module):
    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.a = a

    def forward(self, out, y):
        w = out[0]
        return 0.5 * w @ self.a @ w


def test_pacbayes_sigma_on_a_quadratic():
    a = torch.diag(torch.tensor([4.0, 2.0, 1.0, 0.5, 0.25], dtype=torch.float64))
    model, loss = Quadratic(5), QuadLoss(a)
    batches = [(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))]
    res = pacbayes.flatness_sigma(model, loss, batches, target=0.1, metric="loss", draws=400, depth=40, rtol=1e-6,
                                   seed=3)
    # exact for these draws: increase(sigma) = sigma^2/2 * mean_k z_k^T A z_k
    zaz = np.mean([float(z["w"] @ a @ z["w"]) for z in (pacbayes.draw({"w": model.w}, k, 3) for k in range(400))])
    assert res.bracketed and res.sigma == pytest.approx(math.sqrt(2 * 0.1 / zaz), rel=1e-5)
    # in expectation: sigma^2 tr(A) / 2, within the reported MC error
    expected = res.sigma**2 * float(torch.trace(a)) / 2
    assert abs(res.increase - expected) < 4 * res.stderr
    assert res.sigma == pytest.approx(math.sqrt(0.2 / float(torch.trace(a))), rel=0.1)
    assert torch.equal(model.w.detach(), torch.zeros(5, dtype=torch.float64))  # weights restored


def test_magnitude_aware_noise_scales_with_the_weights():
    a = torch.eye(3, dtype=torch.float64)
    model, loss = Quadratic(3), QuadLoss(a)
    batches = [(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))]
    # at w = 0 the magnitude-aware noise is eps * z whatever sigma: the increase is eps^2/2 * mean z^T z
    mean, _ = pacbayes.degradation(model, loss, batches, sigma=5.0, draws=50, seed=0, magnitude_eps=0.01)
    zz = np.mean([float(z["w"] @ z["w"]) for z in (pacbayes.draw({"w": model.w}, k, 0) for k in range(50))])
    assert mean == pytest.approx(0.01**2 / 2 * zz, rel=1e-9)


def test_bound_terms_by_hand():
    w, w0 = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, -1.0, 0.5])
    t = pacbayes.bound_terms(0.5, 100, w, w0)
    assert t["pacbayes_init"] == pytest.approx(2.0 / 1.0 + math.log(200) + 10)  # ‖w−w0‖² = 2, 4σ² = 1
    assert t["pacbayes_orig"] == pytest.approx(5.25 / 1.0 + math.log(200) + 10)
    assert t["pacbayes_flatness"] == pytest.approx(4.0)
    m = pacbayes.mag_bound_terms(0.5, 100, w, w0, eps=0.1)
    # Jiang et al. Eq. 56/57: numerator eps^2 + (s^2+1)||r||^2/omega, denominator eps^2 + s^2 (w_i - w0_i)^2
    dist = (1.0, -1.0, 0.0)
    for key, r2 in (("pacbayes_mag_init", 2.0), ("pacbayes_mag_orig", 5.25)):
        num = 0.01 + 1.25 * r2 / 3
        want = 0.25 * sum(math.log(num / (0.01 + 0.25 * v**2)) for v in dist) + math.log(200) + 10
        assert m[key] == pytest.approx(want)


def test_pacbayes_search_says_when_the_bracket_misses_the_target():
    a = torch.eye(2, dtype=torch.float64)
    batches = [(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))]
    # upper end: increase(1e4) = 1e8/2 * z^T z is huge, but with target 1e12 it stays below
    high = pacbayes.flatness_sigma(Quadratic(2), QuadLoss(a), batches, target=1e12, metric="loss", draws=2, seed=0)
    assert not high.bracketed and "upper end" in high.note and high.sigma == pytest.approx(1e4)
    # lower end: a tiny target is already exceeded at sigma = 1e-4 (increase ~ 1e-8 * z^T z / 2)
    low = pacbayes.flatness_sigma(Quadratic(2), QuadLoss(a), batches, target=1e-12, metric="loss", draws=2, seed=0)
    assert not low.bracketed and "lower end" in low.note and low.sigma == 1e-4 and low.evaluations == 1


def _linear_net(w1: torch.Tensor, w2: torch.Tensor) -> nn.Module:
    net = nn.Sequential(nn.Flatten(), nn.Linear(w1.shape[1], w1.shape[0], bias=False), nn.ReLU(),
                        nn.Linear(w2.shape[1], w2.shape[0], bias=False)).double()
    with torch.no_grad():
        net[1].weight.copy_(w1)
        net[3].weight.copy_(w2)
    return net


def test_path_norm_and_spectral_measures_in_closed_form():
    torch.manual_seed(4)
    q1, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    w1 = q1 @ torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.5], dtype=torch.float64))  # singular values 3, 2, 1, 0.5
    w2 = torch.diag(torch.tensor([2.0, 1.5, 0.1], dtype=torch.float64)) @ q2 @ torch.eye(3, 4, dtype=torch.float64)
    net = _linear_net(w1, w2)
    # path norm: 1^T (W2∘W2)(W1∘W1) 1 (ReLU passes the positive squared weights unchanged)
    assert norms.path_norm(net, (1, 2, 2)) == pytest.approx(float((w2**2).sum(0) @ (w1**2).sum(1)), rel=1e-12)
    spec = norms.spectral_measures(net)
    assert norms.spectral_norms(net) == pytest.approx([3.0, 2.0])
    assert spec["log_prod_spec"] == pytest.approx(math.log(9.0 * 4.0))
    assert spec["log_sum_spec"] == pytest.approx(math.log(2 * math.sqrt(36.0)))
    frob1, frob2 = 9 + 4 + 1 + 0.25, 4 + 2.25 + 0.01
    assert spec["log_prod_frob"] == pytest.approx(math.log(frob1 * frob2))
    assert norms.num_params(net) == 28


def test_conv_kernels_are_reshaped_for_the_spectral_norm():
    conv = nn.Conv2d(2, 3, 3, bias=False)
    w = conv.weight.detach()
    assert norms.spectral_norms(conv) == pytest.approx([float(torch.linalg.svdvals(w.reshape(3, 18).double())[0])])


def test_distance_to_init_over_layer_weights_only():
    import copy

    net = nn.Linear(2, 1)
    init = copy.deepcopy(net)
    with torch.no_grad():
        net.weight.add_(torch.tensor([[3.0, -4.0]]))
        net.bias.add_(7.0)  # biases are left out (Dziugaite et al.'s weights-only convention)
    assert norms.distance_to_init(net, init) == pytest.approx(5.0)


def test_margin_and_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 3.0, -1.0]])
    labels = torch.tensor([0, 1, 0])
    assert outputs.margins(logits, labels).tolist() == [1.0, 0.0, -2.0]
    out = outputs.output_measures(logits, labels)
    assert out["margin_p10"] == pytest.approx(-2.0 + 0.2 * 2.0)  # numpy linear interpolation: -2 + 0.2*(0-(-2))
    p = [np.exp([2, 0, 1]) / np.exp([2, 0, 1]).sum(), np.ones(3) / 3, np.exp([1, 3, -1]) / np.exp([1, 3, -1]).sum()]
    assert out["entropy"] == pytest.approx(np.mean([-(q * np.log(q)).sum() for q in p]))
    assert out["cross_entropy"] == pytest.approx(-np.mean([np.log(p[0][0]), np.log(p[1][1]), np.log(p[2][0])]))


def test_steps_to_loss():
    history = [{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.09}, {"epoch": 3, "train_loss": 0.05}]
    assert outputs.steps_to_loss(history, 10) == 20
    assert outputs.steps_to_loss(history[:1], 10) is None


def test_every_measure_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "measures.md").read_text()
    for name, spec in REGISTRY.items():
        assert f"`{name}`" in doc, name
        assert spec.units and spec.reference and spec.definition


def test_measures_analysis_caches_and_merges(tiny_run, cli):
    from landscape.checkpoint import load_checkpoint
    from landscape.errors import LandscapeError

    ck = load_checkpoint(tiny_run, device="cpu")
    kw = {"samples": 32, "ggn_samples": 8, "draws": 2, "depth": 3, "progress": False}
    rec = analyze(ck, **kw)
    values = rec["result"]["values"]
    assert values["num_params"] == sum(p.numel() for p in ck.model.parameters() if p.dim() >= 2)
    assert rec["provenance"]["weights"]["folded"] == 2 and "folded" in rec["provenance"]["weights"]["convention"]
    search = rec["result"]["details"]["pacbayes"]
    assert search["metric"] == "accuracy" and search["variant"].startswith("accuracy drop")
    if search["bracketed"]:
        assert values["pacbayes_flatness"] == pytest.approx(1 / values["pacbayes_sigma"] ** 2)
    else:  # a 2-epoch phantom run may never lose 0.1 accuracy: no value, and the record says why
        assert values["pacbayes_sigma"] is None and search["note"]
    assert analyze(ck, **kw)["provenance"]["created"] == rec["provenance"]["created"]  # cached
    merged = measure_values(ck.path, ck.fingerprint[:16])
    assert merged["ggn_trace"] == values["ggn_trace"] and set(merged) == set(REGISTRY)
    with pytest.raises(LandscapeError, match="unknown measure"):
        analyze(ck, measures="nope", progress=False)
    res = cli("measures", str(tiny_run), "--samples", "32", "--ggn-samples", "8", "--draws", "2", "--depth", "3",
              "--measures", "norms")
    assert res.code == 2 and "unknown measure" in res.err
