"""SAM-family steps around any torch optimizer with parameter groups, and mixed precision.

The group tests compare one or two float64 steps around ``torch.optim.AdamW``
with a hand computation (perturbation, gradient at the perturbed point,
AdamW's update per group) to 1e-12.
"""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.optim import create_optimizer


def _net(seed: int = 0, dtype=torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).to(dtype)


def _data(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 4, generator=g, dtype=dtype), torch.randint(0, 2, (16,), generator=g)


def _groups(model):
    """Weights decay at lr 0.1, biases do not, at lr 0.02: the fine-tuning recipe, two groups."""
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    return [{"params": weights, "lr": 0.1, "weight_decay": 0.05}, {"params": biases, "lr": 0.02, "weight_decay": 0.0}]


def _closure(model, opt, x, y, amp=False):
    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        opt.backward(loss) if amp else loss.backward()
        return loss
    return closure


def _grad(model, w, x, y):
    """Gradient of the loss at weights ``w`` (list, in ``parameters()`` order)."""
    names = [n for n, _ in model.named_parameters()]
    leaves = [t.detach().clone().requires_grad_(True) for t in w]
    out = torch.func.functional_call(model, dict(zip(names, leaves)), (x,))
    return list(torch.autograd.grad(nn.functional.cross_entropy(out, y), leaves))


class _HandAdamW:
    """AdamW as torch writes it, one parameter at a time (betas 0.9/0.999, eps 1e-8)."""

    def __init__(self, lrs, wds):
        self.lrs, self.wds, self.t, self.m, self.v = lrs, wds, 0, None, None

    def step(self, w, d):
        self.t += 1
        self.m = [0.1 * g for g in d] if self.m is None else [0.9 * m + 0.1 * g for m, g in zip(self.m, d)]
        self.v = [0.001 * g * g for g in d] if self.v is None else [0.999 * v + 0.001 * g * g
                                                                     for v, g in zip(self.v, d)]
        bc1, bc2 = 1 - 0.9**self.t, 1 - 0.999**self.t
        out = []
        for p, m, v, lr, wd in zip(w, self.m, self.v, self.lrs, self.wds):
            p = p * (1 - lr * wd)
            out.append(p - lr / bc1 * m / (v.sqrt() / math.sqrt(bc2) + 1e-8))
        return out


def _flat_norm(ts):
    return torch.sqrt(sum((t * t).sum() for t in ts))


def _run_against_hand(name, hand_direction, steps=2, **hyper):
    model = _net()
    x, y = _data()
    opt = create_optimizer(name, _groups(model), base=torch.optim.AdamW, model=model, **hyper)
    w = [p.detach().clone() for p in model.parameters()]
    is_weight = [n.endswith("weight") for n, _ in model.named_parameters()]
    hand = _HandAdamW([0.1 if iw else 0.02 for iw in is_weight], [0.05 if iw else 0.0 for iw in is_weight])
    for _ in range(steps):
        opt.step(_closure(model, opt, x, y))
        w = hand.step(w, hand_direction(model, w, x, y, is_weight))
        for p, q in zip(model.parameters(), w):
            torch.testing.assert_close(p.detach(), q, rtol=0, atol=1e-12)
    return opt


def test_sam_around_adamw_with_two_groups_matches_the_hand_computation():
    rho = 0.05

    def sam(model, w, x, y, is_weight):
        g = _grad(model, w, x, y)
        e = [rho * gi / (_flat_norm(g) + 1e-12) for gi in g]  # over all groups together
        return _grad(model, [wi + ei for wi, ei in zip(w, e)], x, y)

    opt = _run_against_hand("sam", sam, rho=rho)
    assert opt.base == "adamw" and type(opt.base_optimizer) is torch.optim.AdamW
    assert [g["lr"] for g in opt.group_settings()] == [0.1, 0.02]
    assert [g["weight_decay"] for g in opt.group_settings()] == [0.05, 0.0]
    assert [g["num_params"] for g in opt.group_settings()] == [18, 5]


def test_sam_with_a_rho_per_group_matches_the_hand_computation():
    def sam(model, w, x, y, is_weight):
        g = _grad(model, w, x, y)
        e = [(0.05 if iw else 0.2) * gi / (_flat_norm(g) + 1e-12) for gi, iw in zip(g, is_weight)]
        return _grad(model, [wi + ei for wi, ei in zip(w, e)], x, y)

    model = _net()
    x, y = _data()
    groups = _groups(model)
    groups[1]["rho"] = 0.2  # the weights' group keeps the optimizer's rho
    opt = create_optimizer("sam", groups, base=torch.optim.AdamW, model=model, rho=0.05)
    w = [p.detach().clone() for p in model.parameters()]
    is_weight = [n.endswith("weight") for n, _ in model.named_parameters()]
    hand = _HandAdamW([0.1 if iw else 0.02 for iw in is_weight], [0.05 if iw else 0.0 for iw in is_weight])
    opt.step(_closure(model, opt, x, y))
    for p, q in zip(model.parameters(), hand.step(w, sam(model, w, x, y, is_weight))):
        torch.testing.assert_close(p.detach(), q, rtol=0, atol=1e-12)
    assert opt.group_settings()[1]["rho"] == 0.2 and "rho" not in opt.group_settings()[0]


def test_asam_around_adamw_with_two_groups_matches_the_hand_computation():
    rho, eta = 0.5, 0.01

    def asam(model, w, x, y, is_weight):
        g = _grad(model, w, x, y)
        t = [wi.abs() + eta if iw else torch.ones_like(wi) for wi, iw in zip(w, is_weight)]
        norm = _flat_norm([ti * gi for ti, gi in zip(t, g)])
        e = [rho * ti * ti * gi / (norm + 1e-12) for ti, gi in zip(t, g)]
        return _grad(model, [wi + ei for wi, ei in zip(w, e)], x, y)

    _run_against_hand("asam", asam, rho=rho, eta=eta)


def test_gsam_around_adamw_with_two_groups_matches_the_hand_computation():
    rho, alpha = 0.05, 0.4

    def gsam(model, w, x, y, is_weight):
        g = _grad(model, w, x, y)
        e = [rho * gi / (_flat_norm(g) + 1e-12) for gi in g]
        gp = _grad(model, [wi + ei for wi, ei in zip(w, e)], x, y)
        c = sum((a * b).sum() for a, b in zip(g, gp)) / (_flat_norm(gp) ** 2 + 1e-12)
        return [b - alpha * (a - c * b) for a, b in zip(g, gp)]

    _run_against_hand("gsam", gsam, rho=rho, alpha=alpha)


def test_state_dict_round_trips_with_groups_and_a_class_base():
    x, y = _data()
    runs = []
    for reload in (False, True):
        model = _net()
        opt = create_optimizer("sam", _groups(model), base=torch.optim.AdamW, model=model, rho=0.05)
        opt.step(_closure(model, opt, x, y))
        if reload:
            buf = io.BytesIO()
            torch.save(opt.state_dict(), buf)
            buf.seek(0)
            state = torch.load(buf, weights_only=True)
            opt = create_optimizer("sam", _groups(model), base=torch.optim.AdamW, model=model, rho=0.05)
            opt.load_state_dict(state)
            assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]
        opt.step(_closure(model, opt, x, y))
        runs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_group_and_base_errors_are_one_line():
    model = _net()
    cases = [
        (lambda: create_optimizer("gsam", [{"params": list(model.parameters()), "rho": 0.1}]), "one rho for all"),
        (lambda: create_optimizer("sam", [{"params": list(model.parameters()), "rho": -1.0}]), "rho must be > 0"),
        (lambda: create_optimizer("sam", [{"lr": 0.1}]), "needs a 'params' entry"),
        (lambda: create_optimizer("sam", model, base=torch.optim.AdamW, momentum=0.9), "momentum does not apply"),
        (lambda: create_optimizer("sam", model, base=torch.optim.AdamW, betas=(2.0, 0.9)), "base optimizer"),
        (lambda: create_optimizer("sam", model, base=dict), "unknown base optimizer"),
        (lambda: create_optimizer("sam", [{"params": [model[0].weight]}, {"params": [model[0].weight]}]),
         "more than one parameter group"),
    ]
    for make, message in cases:
        with pytest.raises(LandscapeError) as err:
            make()
        assert message in str(err.value) and "\n" not in str(err.value)
    assert create_optimizer("sam", model, base="AdamW").base == "adamw"


# --- mixed precision -----------------------------------------------------------------------

def _bn_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def _amp_closure(model, opt, x, y, seen, inject_at=None):
    def closure():
        opt.zero_grad()
        out = model(x)
        seen.append(out.dtype)
        loss = nn.functional.cross_entropy(out, y)
        opt.backward(loss)
        if len(seen) == inject_at:
            model[0].weight.grad[0, 0] = math.inf
        return loss
    return closure


def _amp_data():
    g = torch.Generator().manual_seed(2)
    return torch.randn(32, 8, generator=g), torch.randint(0, 3, (32,), generator=g)


@pytest.mark.parametrize("name,tol", [("sam", 0.02), ("crsam", 0.1)])  # CR-SAM's g+ + g- - 2 g0 cancels digits
def test_a_bf16_step_matches_the_float32_step_and_every_pass_is_autocast(name, tol):
    x, y = _amp_data()
    deltas, seen = [], []
    for amp in (None, "bf16"):
        model = _bn_net()
        before = [p.detach().clone() for p in model.parameters()]
        opt = create_optimizer(name, model, base="sgd", lr=0.1, amp=amp, momentum=0.0)
        seen = []
        opt.step(_amp_closure(model, opt, x, y, seen) if amp else _closure(model, opt, x, y))
        deltas.append(torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(model.parameters(), before)]))
    assert seen == [torch.bfloat16] * opt.passes_per_step
    assert all(p.dtype == torch.float32 for p in model.parameters())
    error = float((deltas[1] - deltas[0]).norm() / deltas[0].norm())
    assert 0 < error < tol, error  # bf16 keeps 8 bits (a few parts in a thousand per op), and it did run in bf16


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_an_inf_gradient_in_the_second_pass_skips_the_step_and_restores_the_weights(amp):
    x, y = _amp_data()
    model = _bn_net()
    model.train()
    opt = create_optimizer("sam", model, base="adamw", lr=0.1, amp=amp)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    scale = opt.scaler.scale if opt.scaler else None
    loss = opt.step(_amp_closure(model, opt, x, y, [], inject_at=2))
    assert math.isfinite(float(loss)) and opt.skipped_steps == 1
    # weights back at the unperturbed point; BN statistics as the clean pass left them (one update)
    for k, v in model.state_dict().items():
        if k.startswith("1.") and "running" in k or k.endswith("num_batches_tracked"):
            continue
        assert torch.equal(v, state[k]), k
    assert opt.base_optimizer.state == {} and all(p.grad is None for p in model.parameters())
    if amp == "fp16":
        assert opt.scaler.scale == scale / 2
    # the next clean step goes through
    opt.step(_amp_closure(model, opt, x, y, []))
    assert opt.skipped_steps == 1 and not torch.equal(model[0].weight, state["0.weight"])
    assert opt.state_dict()["amp"] == amp


def test_fp16_unscales_before_the_ascent_so_the_step_equals_float32_on_cpu():
    x, y = _amp_data()
    deltas = []
    for amp in (None, "fp16"):
        model = _bn_net()
        before = [p.detach().clone() for p in model.parameters()]
        opt = create_optimizer("asam", model, base="sgd", lr=0.1, amp=amp, momentum=0.0)
        opt.step(_amp_closure(model, opt, x, y, []) if amp else _closure(model, opt, x, y))
        deltas.append(torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(model.parameters(), before)]))
    torch.testing.assert_close(deltas[1], deltas[0], rtol=0.01, atol=0.005 * float(deltas[0].abs().max()))
    assert opt.scaler.scale == 2.0**16 and opt.scaler.clean_steps == 1


def test_amp_needs_opt_backward_and_a_known_dtype():
    x, y = _amp_data()
    model = _bn_net()
    opt = create_optimizer("sam", model, amp="bf16")
    with pytest.raises(LandscapeError, match=r"must call opt.backward\(loss\)"):
        opt.step(_closure(model, opt, x, y))
    with pytest.raises(LandscapeError, match="amp must be bf16 or fp16"):
        create_optimizer("sam", model, amp="fp8")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_sam_on_cuda_matches_float32_and_skips_overflowing_steps():
    x, y = (t.cuda() for t in _amp_data())
    deltas = []
    for amp in (None, "fp16"):
        model = _bn_net().cuda()
        before = [p.detach().clone() for p in model.parameters()]
        opt = create_optimizer("sam", model, base="sgd", lr=0.1, amp=amp, momentum=0.0)
        seen = []
        opt.step(_amp_closure(model, opt, x, y, seen) if amp else _closure(model, opt, x, y))
        deltas.append(torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(model.parameters(), before)]))
    assert seen == [torch.float16, torch.float16]
    torch.testing.assert_close(deltas[1], deltas[0], rtol=0.01, atol=0.005 * float(deltas[0].abs().max()))
    weights = [p.detach().clone() for p in model.parameters()]
    opt.step(_amp_closure(model, opt, x, y, [], inject_at=2))
    assert opt.skipped_steps == 1 and opt.scaler.scale == 2.0**15
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights))
