"""Invariant flatness: adaptive worst-case m-sharpness and relative flatness against closed forms, dense Hessians
and function-preserving rescaling; the parameterisation the Hessian and standard sharpness records state."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_measures_invariance import MODELS, _build, _context, _rescale
from torch import nn
from torch.func import functional_call

from landscape.analysis import columns, get_analysis, list_analyses, quantities
from landscape.analysis.sharpness import ADAPTIVE, ADAPTIVE_RHOS, RAW
from landscape.measures import REGISTRY
from landscape.measures.catalogue import RAW as RAW_TAG
from landscape.measures.relative_flatness import relative_flatness
from landscape.sharpness import sub_batches, worst_case_sharpness
from landscape.study.presets import FULL, QUICK

C = 4.0  # the rescaling factor
SEED = 2  # at seed 0 the small ResNet's 1 x 1 features are all zero (every ReLU dead): nothing to measure


def _model(key: str) -> nn.Module:
    return _build(key, seed=SEED)


def _data(model: nn.Module, size: int, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded images and labels the model mostly fits (a few flipped, so that the losses are not ~0)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, size, size, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:4] = (y[:4] + 1) % 3
    return x, y


# -- adaptive worst-case m-sharpness ----------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(MODELS))
@pytest.mark.parametrize("norm,rhos", [("linf", (0.005, 0.02)), ("l2", (0.05, 0.2))])
def test_adaptive_sharpness_is_invariant_to_batchnorm_rescaling_and_standard_is_not(key, norm, rhos):
    size = MODELS[key][2]
    model = _model(key)
    x, y = _data(model, size)
    batches = sub_batches(x, y, m=8, samples=16, seed=0)
    loss = nn.CrossEntropyLoss()

    def both():
        adaptive = worst_case_sharpness(model, loss, batches, rhos, norm=norm, adaptive=True, steps=5)
        standard = worst_case_sharpness(model, loss, batches, [0.05], norm="l2", steps=5)
        return np.array(adaptive.per_batch), np.array(standard.per_batch)

    adaptive, standard = both()
    logits = model(x)
    _rescale(model, C)
    assert torch.allclose(model(x), logits, rtol=1e-10, atol=1e-10)  # the same function
    adaptive_after, standard_after = both()
    assert np.all(adaptive > 1e-4)  # a real loss increase, not a trivial zero
    np.testing.assert_allclose(adaptive_after, adaptive, rtol=1e-6)
    # the raw-weight ball is c times smaller relative to the conv weights: the standard value falls
    assert np.all(standard_after < 0.9 * standard)  # measured: 26% (cnn-small) and 44% (ResNet) lower


def test_adaptive_worst_case_on_a_linear_model_with_squared_loss_has_a_closed_form():
    # f(x) = w.x, L_B = (w.x - y)^2 on sub-batches of one point: with a = |w| * x and r = w.x - y,
    # max_{||u||_2 <= rho} (r + a.u)^2 = (|r| + rho ||a||_2)^2 and max_{||u||_inf <= rho} = (|r| + rho ||a||_1)^2.
    rng = np.random.default_rng(3)
    w = rng.normal(size=6)
    w[2] = 0.0  # an exact zero is not perturbed: a_2 = 0 whatever x_2
    x, y = rng.normal(size=(5, 6)), rng.normal(size=5)
    model = nn.Linear(6, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor(w)[None])

    def squared(out, target):
        return ((out.squeeze(1) - target) ** 2).mean()

    batches = sub_batches(torch.tensor(x), torch.tensor(y), m=1, samples=5, seed=0)
    xs, ys = np.array([b[0][0].numpy() for b in batches]), np.array([float(b[1][0]) for b in batches])
    r, a = xs @ w - ys, np.abs(w) * xs
    for norm, size in (("l2", np.linalg.norm(a, axis=1)), ("linf", np.abs(a).sum(axis=1))):
        rhos = [0.01, 0.1, 0.5]
        res = worst_case_sharpness(model, squared, batches, rhos, norm=norm, adaptive=True, steps=10)
        expected = np.array([[(abs(ri) + rho * si) ** 2 - ri ** 2 for rho in rhos] for ri, si in zip(r, size)])
        np.testing.assert_allclose(res.per_batch, expected, rtol=1e-12)
        # by hand for the first point at rho = 0.1: 2 |r| rho s + rho^2 s^2
        assert res.per_batch[0, 1] == pytest.approx(2 * abs(r[0]) * 0.1 * size[0] + 0.01 * size[0] ** 2, rel=1e-12)
        standard = worst_case_sharpness(model, squared, batches, rhos, norm=norm, steps=10)
        assert not np.allclose(standard.per_batch, res.per_batch)  # c = 1 is another quantity


def test_the_adaptive_analysis_is_registered_beside_the_standard_one_in_every_study():
    spec = get_analysis("sharpness_adaptive")
    assert list_analyses().index("sharpness_adaptive") == list_analyses().index("sharpness") + 1
    assert spec.kind == "sharpness" and spec.stage == "sharpness" and spec.columns == ("sharpness_adaptive_worst",)
    defaults = spec.defaults()
    assert defaults["norm"] == "linf" and defaults["rhos"] == ADAPTIVE_RHOS == (0.002, 0.005, 0.01)
    assert "sharpness_adaptive_worst" in columns() and "m_sharpness_adaptive" in quantities()
    assert "sharpness_adaptive" in QUICK.analyses() and "sharpness_adaptive" in FULL.analyses()
    measure = REGISTRY["sharpness_adaptive_worst"]
    assert measure.direction == 1 and measure.source == "sharpness" and RAW_TAG not in measure.tags
    # each column reads its own records: a newer adaptive record never fills the standard column
    standard = {"result": {"kind": "worst", "adaptive": False, "rhos": [0.05, 0.01], "mean": [0.3, 0.1]}}
    adaptive = {"result": {"kind": "worst", "adaptive": True, "rhos": [0.002, 0.01], "mean": [0.02, 0.4]}}
    assert REGISTRY["sharpness_worst"].extract(standard) == 0.3
    assert REGISTRY["sharpness_worst"].extract(adaptive) is None
    assert REGISTRY["sharpness_adaptive_worst"].extract(adaptive) == 0.4
    assert REGISTRY["sharpness_adaptive_worst"].extract(standard) is None
    assert REGISTRY["sharpness_adaptive_worst"].read(adaptive)[1] == {"rho": 0.01, "std": None}
    provides = {q: test for q, (_, test) in quantities().items()}
    assert provides["m_sharpness"](standard) and not provides["m_sharpness"](adaptive)
    assert provides["m_sharpness_adaptive"](adaptive) and not provides["m_sharpness_adaptive"](standard)
    for name in ("lambda_max", "hessian_trace", "sharpness_worst", "sharpness_average", "ggn_trace"):
        assert RAW_TAG in REGISTRY[name].tags, name


def test_records_state_their_parameterisation(tiny_run, tmp_path):
    from landscape.checkpoint import load_checkpoint

    run = tmp_path / tiny_run.name
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("analysis"))
    ck = load_checkpoint(run)
    small = {"m": 8, "samples": 16, "steps": 2}
    adaptive = get_analysis("sharpness_adaptive").run(ck, 0, {**small, "rhos": (0.01,)}, progress=False)
    res = adaptive["result"]
    assert (res["kind"], res["norm"], res["adaptive"], res["parameterisation"]) == ("worst", "linf", True, ADAPTIVE)
    # the driver is the standard one with adaptive=True: the same record, from the cache
    again = get_analysis("sharpness").run(ck, 0, {**small, "rhos": (0.01,), "norm": "linf", "adaptive": True},
                                         progress=False)
    assert again["path"] == adaptive["path"] and again["result"]["mean"] == res["mean"]
    standard = get_analysis("sharpness").run(ck, 0, {**small, "rhos": (0.05,)}, progress=False)
    assert standard["result"]["parameterisation"] == RAW and standard["path"] != adaptive["path"]
    hessian = get_analysis("hessian").run(ck, 0, {"top_k": 1, "samples": 16, "trace": False}, progress=False)
    assert hessian["result"]["parameterisation"] == "raw weights; not invariant to BatchNorm rescaling"


def test_report_captions_name_the_raw_weight_measures():
    from landscape.report.content import parameterisation_note

    text = parameterisation_note(["lambda_max", "hessian_trace", "sharpness_adaptive_worst", "relative_flatness"])
    assert "λ_max (top Hessian eigenvalue), Hessian trace: taken in the raw weights" in text
    assert "adaptive m-sharpness (worst case)," not in text
    assert parameterisation_note(["sharpness_adaptive_worst", "relative_flatness", "dist_init"]) == ""


# -- relative flatness --------------------------------------------------------------------------------------------

def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Tanh(), nn.Linear(5, 3)).double()


def test_relative_flatness_matches_a_dense_autograd_hessian_and_the_softmax_closed_form():
    model = _mlp()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(20, 1, 3, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (20,), generator=gen)
    res = relative_flatness(model, nn.CrossEntropyLoss(), x, y, chunk=7)
    # dense: the Hessian of the mean cross-entropy of the whole model in the last weight, by autograd
    params = dict(model.named_parameters())
    w = params["3.weight"].detach()

    def loss_of(head):
        return F.cross_entropy(functional_call(model, {**params, "3.weight": head}, (x,)), y)

    h = torch.autograd.functional.hessian(loss_of, w)  # [3, 5, 3, 5]
    blocks = torch.einsum("skuk->su", h)  # Tr(H_{s,s'})
    kappa = sum(float(w[s] @ w[t]) * float(blocks[s, t]) for s in range(3) for t in range(3))
    assert res["relative_flatness"] == pytest.approx(kappa, rel=1e-12)
    np.testing.assert_allclose(res["block_traces"], blocks.numpy(), rtol=1e-12, atol=1e-15)
    assert res["head_trace"] == pytest.approx(float(torch.einsum("sksk->", h)), rel=1e-12)
    assert (res["head"], res["n_samples"], res["n_features"], res["n_classes"]) == ("3", 20, 5, 3)
    # closed form for softmax cross-entropy: (1/N) sum_n ||phi_n||^2 (sum_c G_cc p_c - p' G p), G = W W'
    phi = np.tanh(x.reshape(20, 12).numpy() @ params["1.weight"].detach().numpy().T + params["1.bias"].detach().numpy())
    z = phi @ w.numpy().T + params["3.bias"].detach().numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = w.numpy() @ w.numpy().T
    closed = np.mean((phi ** 2).sum(1) * (p @ np.diag(g) - np.einsum("nc,cd,nd->n", p, g, p)))
    assert res["relative_flatness"] == pytest.approx(closed, rel=1e-12)


def test_relative_flatness_by_hand_for_one_image_and_two_classes():
    # phi = (1, 2), W = [[1, 0], [0, 1]], b = 0: z = (1, 2), p = softmax(z), A = p1 p2 [[1, -1], [-1, 1]];
    # Tr(H_{s,s'}) = ||phi||^2 A = 5 A and kappa = sum G * 5A with G = I: 5 (A_11 + A_22) = 10 p1 p2
    model = nn.Linear(2, 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.eye(2, dtype=torch.float64))
        model.bias.zero_()
    res = relative_flatness(model, nn.CrossEntropyLoss(), torch.tensor([[1.0, 2.0]], dtype=torch.float64),
                            torch.tensor([0]))
    p1 = 1 / (1 + np.e)
    assert res["relative_flatness"] == pytest.approx(10 * p1 * (1 - p1), rel=1e-14)
    assert res["block_traces"][0][1] == pytest.approx(-5 * p1 * (1 - p1), rel=1e-14)


@pytest.mark.parametrize("key", list(MODELS))
def test_relative_flatness_is_invariant_to_batchnorm_rescaling(key):
    size = MODELS[key][2]
    init = {k: v.clone() for k, v in _build(key, seed=1).state_dict().items()}
    model = _model(key)
    spec = REGISTRY["relative_flatness"]
    before = spec.compute(_context(model, init, size))
    _rescale(model, C)
    after = spec.compute(_context(model, init, size))
    assert before["relative_flatness"] > 1e-3
    assert after["relative_flatness"] == pytest.approx(before["relative_flatness"], rel=1e-9)
    assert spec.direction == 1 and before["details"]["head"] == ("head" if key == "cnn-small" else "fc")


def test_relative_flatness_is_invariant_to_rescaling_the_head_against_its_features_and_the_plain_trace_is_not():
    # the last BatchNorm's affine parameters / c (ahead of ReLU and the pool: features / c), the head's weight x c
    size = MODELS["cnn-small"][2]
    model = _model("cnn-small")
    x, y = _data(model, size, n=24)
    loss = nn.CrossEntropyLoss()
    before = relative_flatness(model, loss, x, y)
    logits = model(x)
    bn = [m for m in model.features if isinstance(m, nn.BatchNorm2d)][-1]
    with torch.no_grad():
        bn.weight.div_(C)
        bn.bias.div_(C)
        model.head.weight.mul_(C)
    assert torch.allclose(model(x), logits, rtol=1e-10, atol=1e-10)
    after = relative_flatness(model, loss, x, y)
    assert after["relative_flatness"] == pytest.approx(before["relative_flatness"], rel=1e-10)
    assert after["head_trace"] == pytest.approx(before["head_trace"] / C ** 2, rel=1e-10)


def test_relative_flatness_is_none_with_a_note_for_a_model_without_a_final_linear_layer():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Tanh()).double()
    x = torch.randn(6, 1, 2, 2, dtype=torch.float64)
    y = torch.zeros(6, dtype=torch.long)
    ctx = SimpleNamespace(model=model, train_data=(x, y), ck=SimpleNamespace(loss_fn=nn.CrossEntropyLoss()))
    out = REGISTRY["relative_flatness"].compute(ctx)
    assert out["relative_flatness"] is None
    assert out["details"]["note"] == ("relative flatness needs a final linear layer: the model's output is not the "
                                      "output of its last nn.Linear")
