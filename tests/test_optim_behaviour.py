"""What the multi-pass step must guarantee: BN statistics, dropout masks, weights, errors, state."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.optim import OPTIMIZERS, create_optimizer, get_optimizer, hyper_defaults, resolve_hyper

SAM_FAMILY = [n for n in OPTIMIZERS if not get_optimizer(n).is_base]


def small_cnn(dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.Dropout(dropout),  # before the ReLU: a zero after it is a dropped unit
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 3),
    ).double()


def batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(8, 1, 6, 6, generator=gen, dtype=torch.float64), torch.randint(0, 3, (8,), generator=gen)


def make_closure(model, opt, x, y, record=None):
    def closure():
        opt.zero_grad()
        if record is not None:
            record.append([p.detach().clone() for p in model.parameters()])
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return closure


def weights(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_passes_per_step_counts_closure_calls(name):
    model = small_cnn()
    opt = create_optimizer(name, model, lr=1e-3)
    calls = []
    x, y = batch()
    opt.step(make_closure(model, opt, x, y, record=calls))
    assert len(calls) == opt.passes_per_step == {"crsam": 3, "adam": 1, "sgd": 1}.get(name, 2)


@pytest.mark.parametrize("name", SAM_FAMILY)
def test_bn_running_stats_come_from_the_clean_pass_only(name):
    model = small_cnn()
    reference = copy.deepcopy(model)
    x, y = batch()
    opt = create_optimizer(name, model, lr=1e-2)
    opt.step(make_closure(model, opt, x, y))
    reference(x)  # the clean pass alone, in train mode
    for b, ref in zip(model[1].buffers(), reference[1].buffers()):
        assert torch.equal(b, ref)
    assert int(model[1].num_batches_tracked) == 1


def test_dropout_masks_are_replayed_in_every_pass():
    model = small_cnn(dropout=0.5)
    masks = []
    model[2].register_forward_hook(lambda mod, inp, out: masks.append(out == 0))
    opt = create_optimizer("crsam", model, lr=1e-2)
    x, y = batch()
    for _ in range(2):
        opt.step(make_closure(model, opt, x, y))
    assert len(masks) == 6
    assert all(torch.equal(masks[0], m) for m in masks[1:3])
    assert all(torch.equal(masks[3], m) for m in masks[4:6])
    assert not torch.equal(masks[0], masks[3])  # the RNG still advances from step to step


@pytest.mark.parametrize("name", SAM_FAMILY)
def test_model_holds_updated_original_weights(name):
    model = small_cnn()
    x, y = batch()
    hyper = {"decoupled": False} if name == "wsam" else {}
    opt = create_optimizer(name, model, base="sgd", lr=0.1, momentum=0.0, **hyper)
    seen = []
    opt.step(make_closure(model, opt, x, y, record=seen))
    # SGD moved the weights of the clean pass (seen[0]) by -lr * the direction left in .grad.
    for p, w0 in zip(model.parameters(), seen[0]):
        assert torch.allclose(p.detach(), w0 - 0.1 * p.grad, rtol=0, atol=1e-15)
    assert not all(torch.equal(p, w) for p, w in zip(model.parameters(), seen[-1]))


@pytest.mark.parametrize("name", SAM_FAMILY)
def test_weights_and_bn_restored_when_a_perturbed_pass_raises(name):
    model = small_cnn()
    x, y = batch()
    opt = create_optimizer(name, model, lr=1e-2)
    start = weights(model)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if len(calls) == opt.passes_per_step:
            raise RuntimeError("out of memory (simulated)")
        return loss

    stats = None
    with pytest.raises(RuntimeError, match="simulated"):
        stats = [b.clone() for b in model[1].buffers()]
        opt.step(closure)
    assert all(torch.equal(a, b) for a, b in zip(weights(model), start))
    assert not all(torch.equal(a, b) for a, b in zip(model[1].buffers(), stats))  # clean-pass stats are kept
    reference = copy.deepcopy(small_cnn())
    reference(x)
    assert all(torch.equal(a, b) for a, b in zip(model[1].buffers(), reference[1].buffers()))


@pytest.mark.parametrize("name, bad_pass", [("adam", 1), ("sam", 1), ("sam", 2), ("crsam", 3)])
def test_non_finite_loss_does_not_step(name, bad_pass):
    model = small_cnn()
    x, y = batch()
    opt = create_optimizer(name, model, lr=1e-2)
    start = weights(model)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        if len(calls) == bad_pass:
            loss = loss * float("nan")
        loss.backward()
        return loss

    with pytest.raises(LandscapeError, match="non-finite"):
        opt.step(closure)
    assert all(torch.equal(a, b) for a, b in zip(weights(model), start))
    assert not opt.base_optimizer.state  # the base optimizer never stepped


def test_asam_scales_only_weight_tensors():
    model = small_cnn()
    x, y = batch()
    eta, rho = 0.01, 0.5
    opt = create_optimizer("asam", model, lr=1e-3, rho=rho, eta=eta)
    seen = []
    clean = copy.deepcopy(model)
    nn.functional.cross_entropy(clean(x), y).backward()
    opt.step(make_closure(model, opt, x, y, record=seen))
    names = [n for n, _ in model.named_parameters()]
    e = {n: b - a for n, a, b in zip(names, seen[0], seen[1])}
    g = {n: p.grad for n, p in clean.named_parameters()}
    w = dict(zip(names, seen[0]))
    scaled = {"0.weight", "5.weight"}  # conv and linear; BN weight, all biases get T = 1
    t = {n: (w[n].abs() + eta if n in scaled else torch.ones_like(w[n])) for n in names}
    norm = torch.sqrt(sum(((t[n] * g[n]) ** 2).sum() for n in names))
    for n in names:
        assert torch.allclose(e[n], rho * t[n] ** 2 * g[n] / norm, rtol=1e-9, atol=1e-14), n


def test_params_without_grad_are_skipped():
    model = small_cnn()
    unused = nn.Parameter(torch.ones(3, dtype=torch.float64))
    model.register_parameter("unused", unused)
    x, y = batch()
    opt = create_optimizer("sam", model, lr=1e-2)
    seen = []
    opt.step(make_closure(model, opt, x, y, record=seen))
    index = [n for n, _ in model.named_parameters()].index("unused")
    assert len(seen) == 2
    assert all(torch.equal(s[index], torch.ones(3, dtype=torch.float64)) for s in seen)
    assert torch.equal(unused.detach(), torch.ones(3, dtype=torch.float64))


def test_resolve_hyper_defaults_and_rejections():
    assert resolve_hyper("sam", {}) == {**hyper_defaults("sam"), "rho": 0.05}
    assert resolve_hyper("asam", {"rho": "0.2"})["rho"] == 0.2  # CLI strings are coerced
    assert resolve_hyper("wsam", {"decoupled": "false"})["decoupled"] is False
    assert resolve_hyper("sgd", {"momentum": None})["momentum"] == 0.9  # None means "default"
    assert resolve_hyper("gsam", {"rho_max": 0.1, "rho_min": 0.02})["rho"] is None
    cases = [
        ("adam", {"rho": 0.1}, "rho does not apply to adam; it takes: amsgrad, betas, eps, weight_decay"),
        ("sam", {"eta": 0.1}, "eta does not apply to sam"),
        ("sgd", {"betas": (0.9, 0.99)}, "betas does not apply to sgd"),
        ("sam", {"momentum": 0.9}, r"momentum does not apply to sam \(base adam\)"),
        ("nope", {}, "unknown optimizer"),
        ("gsam", {"rho": 0.1, "rho_max": 0.2, "rho_min": 0.1}, "either rho"),
        ("gsam", {"rho_max": 0.2}, "needs both"),
        ("wsam", {"gamma": 1.0}, "gamma must be in"),
        ("sam", {"rho": -1}, "rho must be"),
        ("sam", {"rho": "abc"}, "bad value for rho"),
    ]
    for name, given, message in cases:
        with pytest.raises(LandscapeError, match=message):
            resolve_hyper(name, given)
    assert resolve_hyper("sam", {"momentum": 0.5}, base="sgd")["momentum"] == 0.5
    with pytest.raises(LandscapeError, match="unknown base"):
        create_optimizer("sam", small_cnn(), base="lion")


def test_hyper_records_every_default():
    opt = create_optimizer("crsam", small_cnn(), base="sgd", lr=0.1, gamma=0.2)
    assert opt.hyper == {"rho": 0.1, "gamma": 0.2, "beta": 0.01, "momentum": 0.9, "dampening": 0.0, "nesterov": False,
                         "weight_decay": 0.0}
    assert (opt.name, opt.base, opt.passes_per_step) == ("crsam", "sgd", 3)


@pytest.mark.parametrize("name", ["sgd", "gsam", "wsam"])
def test_state_dict_round_trip_with_weights_only(name):
    x, y = batch()
    hyper = {"rho_max": 0.1, "rho_min": 0.01} if name == "gsam" else {}
    a = small_cnn()
    opt_a = create_optimizer(name, a, lr=1e-2, **hyper)
    for _ in range(2):
        opt_a.step(make_closure(a, opt_a, x, y))
    buf = io.BytesIO()
    torch.save(opt_a.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    b = copy.deepcopy(a)
    opt_b = create_optimizer(name, b, lr=1e-2, **hyper)
    opt_b.load_state_dict(state)
    for opt in (opt_a, opt_b):  # schedulers act on the groups shared with the base optimizer
        torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5)
        assert opt.base_optimizer.param_groups[0]["lr"] == 0.5e-2
    opt_a.step(make_closure(a, opt_a, x, y))
    opt_b.step(make_closure(b, opt_b, x, y))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(LandscapeError, match="optimizer state is for"):
        create_optimizer("asam", small_cnn(), lr=1e-2).load_state_dict(state)
