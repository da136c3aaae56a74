"""Single steps of every optimizer against closed forms on float64 quadratics.

L(theta) = 1/2 theta' A theta - b' theta with a known SPD A, so every gradient
is A theta - b and each update rule of the issue can be evaluated independently
here, without the package. SGD without momentum is the base unless noted.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from landscape.optim import create_optimizer

TOL = dict(rtol=0, atol=1e-10)
LR = 0.1


class Quadratic(nn.Module):
    """Parameters ``shapes`` flattened into theta; the loss is the quadratic above."""

    def __init__(self, shapes: dict[str, tuple[int, ...]], seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.randn(shape, generator=gen, dtype=torch.float64)))
        n = self.theta().numel()
        m = torch.randn(n, n, generator=gen, dtype=torch.float64)
        self.A = m @ m.T / n + torch.eye(n, dtype=torch.float64)  # SPD
        self.b = torch.randn(n, generator=gen, dtype=torch.float64)

    def theta(self) -> torch.Tensor:
        return torch.cat([p.reshape(-1) for p in self.parameters()])

    def loss(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        t = self.theta() if theta is None else theta
        return 0.5 * t @ self.A @ t - self.b @ t

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        return self.A @ theta - self.b


def closure_for(model: Quadratic, opt):
    def closure():
        opt.zero_grad()
        loss = model.loss()
        loss.backward()
        return loss

    return closure


def one_step(name: str, shapes=None, base="sgd", lr=LR, **hyper):
    """(model, theta before, theta after one step) for optimizer ``name``."""
    model = Quadratic(shapes or {"w": (6,)})
    if base == "sgd":
        hyper.setdefault("momentum", 0.0)
    opt = create_optimizer(name, model, base=base, lr=lr, **hyper)
    theta0 = model.theta().detach().clone()
    loss = opt.step(closure_for(model, opt))
    assert torch.allclose(loss, model.loss(theta0), **TOL)  # step returns the clean-pass loss
    return model, theta0, model.theta().detach()


def unit(v: torch.Tensor, rho: float) -> torch.Tensor:
    return rho * v / (v.norm() + 1e-12)


def test_sgd_and_sam_single_step():
    m, t0, t1 = one_step("sgd")
    assert torch.allclose(t1, t0 - LR * m.grad(t0), **TOL)
    m, t0, t1 = one_step("sam", rho=0.3)
    g = m.grad(t0)
    assert torch.allclose(t1, t0 - LR * m.grad(t0 + unit(g, 0.3)), **TOL)


def test_asam_scales_weight_matrix_not_bias():
    shapes = {"weight": (3, 4), "bias": (3,)}
    m, t0, t1 = one_step("asam", shapes, rho=0.5, eta=0.01)
    g = m.grad(t0)
    t = torch.cat([t0[:12].abs() + 0.01, torch.ones(3, dtype=torch.float64)])
    e = 0.5 * t * t * g / ((t * g).norm() + 1e-12)
    assert torch.allclose(t1, t0 - LR * m.grad(t0 + e), **TOL)


def test_gsam_constant_radius():
    m, t0, t1 = one_step("gsam", rho=0.2, alpha=0.4)
    g = m.grad(t0)
    gp = m.grad(t0 + unit(g, 0.2))
    g_perp = g - (g @ gp) / (gp @ gp + 1e-12) * gp
    assert torch.allclose(t1, t0 - LR * (gp - 0.4 * g_perp), **TOL)


def test_gsam_radius_follows_the_learning_rate():
    model = Quadratic({"w": (6,)})
    opt = create_optimizer("gsam", model, base="sgd", lr=0.2, momentum=0.0, rho_max=0.3, rho_min=0.1, lr_min=0.02,
                           alpha=0.5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5)  # lr_t = 0.1
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    rho_t = 0.1 + (0.3 - 0.1) * (0.1 - 0.02) / (0.2 - 0.02)
    t0 = model.theta().detach().clone()
    opt.step(closure_for(model, opt))
    g = model.grad(t0)
    gp = model.grad(t0 + unit(g, rho_t))
    g_perp = g - (g @ gp) / (gp @ gp + 1e-12) * gp
    assert torch.allclose(model.theta().detach(), t0 - 0.1 * (gp - 0.5 * g_perp), **TOL)
    assert sched.get_last_lr() == [pytest.approx(0.1)]


@pytest.mark.parametrize("decoupled", [True, False])
def test_wsam_with_adam_base(decoupled):
    # Adam's first step is lr * d / (|d| + eps) elementwise, so coupled and decoupled differ.
    lr, k = 0.01, 0.8 / 0.2
    m, t0, t1 = one_step("wsam", base="adam", lr=lr, rho=0.2, gamma=0.8, decoupled=decoupled)
    g = m.grad(t0)
    gp = m.grad(t0 + unit(g, 0.2))

    def adam(d):
        return lr * d / (d.abs() + 1e-8)

    want = t0 - adam(g) - lr * k * (gp - g) if decoupled else t0 - adam(g + k * (gp - g))
    assert torch.allclose(t1, want, **TOL)


def test_crsam_single_step():
    m, t0, t1 = one_step("crsam", rho=0.1, gamma=0.3, beta=0.05)
    g0 = m.grad(t0)
    e = unit(g0, 0.1)
    gp, gm = m.grad(t0 + e), m.grad(t0 - e)
    d = gp + 0.3 * (gp + gm - 2 * g0) + 0.05 * (gp - gm)
    assert torch.allclose(t1, t0 - LR * d, **TOL)


def test_gcsam_centralises_each_output_filter():
    shapes = {"weight": (3, 2, 2), "bias": (3,)}  # a conv-like weight: 3 output filters of 4 numbers
    m, t0, t1 = one_step("gcsam", shapes, rho=0.25)
    g = m.grad(t0)
    gw = g[:12].reshape(3, 4)
    g_c = torch.cat([(gw - gw.mean(dim=1, keepdim=True)).reshape(-1), g[12:]])
    assert torch.allclose(t1, t0 - LR * m.grad(t0 + unit(g_c, 0.25)), **TOL)


def test_adam_base_matches_torch_adam_on_the_same_gradient():
    lr = 0.05
    m, t0, t1 = one_step("sam", base="adam", lr=lr, rho=0.1, weight_decay=0.01)
    gp = m.grad(t0 + unit(m.grad(t0), 0.1))
    p = nn.Parameter(t0.clone())
    ref = torch.optim.Adam([p], lr=lr, weight_decay=0.01)
    p.grad = gp
    ref.step()
    assert torch.allclose(t1, p.detach(), **TOL)
    # The one-pass "adam" over several steps equals torch.optim.Adam.
    model = Quadratic({"w": (6,)})
    opt = create_optimizer("adam", model, lr=lr, betas=(0.8, 0.99))
    q = nn.Parameter(model.theta().detach().clone())
    ref = torch.optim.Adam([q], lr=lr, betas=(0.8, 0.99))
    for _ in range(3):
        opt.step(closure_for(model, opt))
        ref.zero_grad()
        model.loss(q).backward()
        ref.step()
    assert torch.allclose(model.theta().detach(), q.detach(), **TOL)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def _run(name, steps=3, **hyper):
    """Weights of a small MLP after ``steps`` steps of ``name`` on Adam (non-quadratic loss)."""
    model = _mlp()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (16,), generator=gen)
    opt = create_optimizer(name, model, base="adam", lr=0.01, **hyper)

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@pytest.mark.parametrize(
    "name, hyper",
    [
        ("wsam", {"gamma": 0.5, "decoupled": False}),
        ("crsam", {"gamma": 0.0, "beta": 0.0}),
        ("gsam", {"alpha": 0.0}),
    ],
)
def test_equivalences_with_sam(name, hyper):
    rho = 0.07
    assert torch.allclose(_run(name, rho=rho, **hyper), _run("sam", rho=rho), rtol=0, atol=1e-12)
    assert not torch.allclose(_run("adam"), _run("sam", rho=rho), rtol=0, atol=1e-6)  # the comparison can fail
