"""m-sharpness against closed forms: quadratics, dense Hessians, exact moments."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.optimize as so
import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.sharpness import average_case_sharpness, sub_batches, worst_case_sharpness


class Quadratic(nn.Module):
    """Loss ``g'd + d'Ad/2`` with ``d = w - center``; each batch ``x = [A | g]`` brings its own A, g."""

    def __init__(self, center):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(center, dtype=torch.float64))
        self.register_buffer("center", torch.tensor(center, dtype=torch.float64))

    def forward(self, x):
        a, g = x[:, :-1], x[:, -1]
        d = self.w - self.center
        return g @ d + 0.5 * d @ a @ d


def identity_loss(out, y):
    return out


def quad_batch(a, g):
    a, g = np.asarray(a, float), np.asarray(g, float)
    return torch.tensor(np.c_[a, g]), torch.zeros(len(g))


def trs_max(g, a, rho):
    """max g'd + d'Ad/2 over ||d||_2 <= rho via the trust-region secular equation."""
    lam, q = np.linalg.eigh(-a)  # minimise h'd + d'Hd/2 with H = -A, h = -g
    h = q.T @ (-g)
    if lam[0] > 0 and np.linalg.norm(h / lam) <= rho:  # interior maximum
        d = np.linalg.solve(a, -g)
    else:
        lo = max(0.0, -lam[0])

        def gap(mu):
            return np.linalg.norm(h / (lam + mu)) - rho

        hi = lo + 1.0
        while gap(hi) > 0:
            hi *= 2
        mu = so.brentq(gap, lo + 1e-14, hi, xtol=1e-15, rtol=1e-15)
        d = q @ (-h / (lam + mu))
    return g @ d + 0.5 * d @ a @ d


def box_max(g, a, rho, seed=0):
    """max g'd + d'Ad/2 over ||d||_inf <= rho: every vertex, then bounded L-BFGS-B from many starts."""
    n = len(g)

    def neg(d):
        return -(g @ d + 0.5 * d @ a @ d)

    best = max(-neg(rho * np.array(v)) for v in itertools.product([-1.0, 1.0], repeat=n))
    rng = np.random.default_rng(seed)
    for start in rng.uniform(-rho, rho, size=(20, n)):
        r = so.minimize(neg, start, jac=lambda d: -(g + a @ d), method="L-BFGS-B", bounds=[(-rho, rho)] * n,
                        options={"ftol": 1e-15, "gtol": 1e-13})
        best = max(best, -r.fun)
    return best


def random_problem(rng, n, shift):
    m = rng.normal(size=(n, n))
    return (m + m.T) / 2 + shift * np.eye(n), rng.normal(size=n)


RHOS = [0.1, 0.7, 2.0]


def test_worst_l2_matches_trust_region_solution():
    rng = np.random.default_rng(0)
    problems = [random_problem(rng, 6, shift) for shift in (-1.0, 0.0, 2.0)]  # indefinite to near-convex
    model = Quadratic(np.zeros(6))
    res = worst_case_sharpness(model, identity_loss, [quad_batch(a, g) for a, g in problems], RHOS, steps=150)
    expected = np.array([[trs_max(g, a, rho) for rho in RHOS] for a, g in problems])
    np.testing.assert_allclose(res.per_batch, expected, rtol=1e-8)
    np.testing.assert_allclose(res.mean, expected.mean(axis=0), rtol=1e-8)
    np.testing.assert_allclose(res.std, expected.std(axis=0, ddof=1), rtol=1e-6)
    assert res.settings == {"kind": "worst", "norm": "l2", "adaptive": False, "m": 6, "n_batches": 3,
                            "n_samples": 18, "steps": 150, "seed": 0}


def test_worst_l2_zero_gradient_starts_at_random_point_and_finds_top_eigenvalue():
    a = np.diag([3.0, 1.0, -2.0, 0.5])
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))
    res = worst_case_sharpness(Quadratic(np.zeros(4)), identity_loss, [quad_batch(q @ a @ q.T, np.zeros(4))],
                               [0.5], steps=100, seed=3)
    assert res.mean[0] == pytest.approx(0.5**2 * 3.0 / 2, rel=1e-9)


def test_worst_adaptive_l2_equals_transformed_quadratic():
    rng = np.random.default_rng(2)
    center = rng.normal(size=5) * 2
    a, g = random_problem(rng, 5, 0.5)
    c = np.abs(center)
    res = worst_case_sharpness(Quadratic(center), identity_loss, [quad_batch(a, g)], RHOS, adaptive=True, steps=150)
    # delta = c * u with ||u|| <= rho: the quadratic in u has gradient c*g and Hessian C A C
    expected = [trs_max(c * g, c[:, None] * a * c[None, :], rho) for rho in RHOS]
    np.testing.assert_allclose(res.mean, expected, rtol=1e-8)
    assert res.settings["adaptive"] is True


def test_worst_linf_reaches_an_edge_interior_maximum():
    # rotated 2-D saddle: the box maximum lies inside an edge, not at the sign(g) start vertex
    rot = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    a = rot @ np.diag([-4.0, 1.0]) @ rot.T
    g = np.array([1.0, -0.3])
    res = worst_case_sharpness(Quadratic(np.zeros(2)), identity_loss, [quad_batch(a, g)], [0.2, 1.0], norm="linf",
                               steps=200)
    expected = [box_max(g, a, rho) for rho in (0.2, 1.0)]
    np.testing.assert_allclose(res.mean, expected, rtol=1e-8)


def test_worst_linf_matches_vertex_enumeration_in_3d_and_never_exceeds_the_maximum():
    rng = np.random.default_rng(26)  # an instance where the best vertex is not sign(g) at any radius
    m = rng.normal(size=(3, 3))
    a = m @ m.T  # convex: the maximum is at a vertex
    g = rng.normal(size=3)
    assert all(g @ (r * np.sign(g)) + 0.5 * r**2 * np.sign(g) @ a @ np.sign(g) < 0.6 * best
               for r, best in zip(RHOS, [0.3668, 11.58, 88.89]))
    model = Quadratic(np.zeros(3))
    res = worst_case_sharpness(model, identity_loss, [quad_batch(a, g)], RHOS, norm="linf", steps=50)
    vertices = [[max(g @ (r * np.array(v)) + 0.5 * (r * np.array(v)) @ a @ (r * np.array(v))
                     for v in itertools.product([-1.0, 1.0], repeat=3))] for r in RHOS]
    np.testing.assert_allclose(res.mean, np.ravel(vertices), rtol=1e-12)
    # on indefinite problems the ascent may stop at a local maximum, but every iterate is feasible
    problems = [random_problem(rng, 3, -0.5) for _ in range(3)]
    res = worst_case_sharpness(model, identity_loss, [quad_batch(a, g) for a, g in problems], RHOS, norm="linf",
                               steps=50)
    upper = np.array([[box_max(g, a, rho) for rho in RHOS] for a, g in problems])
    assert np.all(res.per_batch <= upper + 1e-12)
    assert np.all(res.per_batch >= 0)


def test_average_case_is_exactly_quadratic_form_mean():
    rng = np.random.default_rng(5)
    center = rng.normal(size=4)
    a, g = random_problem(rng, 4, 3.0)
    c = np.abs(center)
    b_std, b_ada = a, c[:, None] * a * c[None, :]
    draws, rho = 600, 0.3
    for adaptive, b in ((False, b_std), (True, b_ada)):
        res = average_case_sharpness(Quadratic(center), identity_loss, [quad_batch(a, g)], [rho], adaptive=adaptive,
                                     draws=draws, seed=7)
        exact = rho**2 * np.trace(b) / 2
        mc_sd = rho**2 / 2 * np.sqrt(2 * np.trace(b @ b) / draws)  # sd of the mean of z'Bz rho^2/2
        assert abs(res.mean[0] - exact) < 4 * mc_sd
        assert res.mc_stderr[0] == pytest.approx(mc_sd, rel=0.25)
    # antithetic pairs cancel the gradient exactly: a huge g changes nothing
    big_g = average_case_sharpness(Quadratic(center), identity_loss, [quad_batch(a, 1e3 * g)], [rho], draws=50, seed=7)
    no_g = average_case_sharpness(Quadratic(center), identity_loss, [quad_batch(a, 0 * g)], [rho], draws=50, seed=7)
    assert big_g.mean[0] == pytest.approx(no_g.mean[0], rel=1e-9)


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 3)).double()


def data(n=48):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 5, generator=gen, dtype=torch.float64), torch.randint(0, 3, (n,), generator=gen)


def dense_grad_hessian(model, x, y):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(flat):
        parts, i = {}, 0
        for n, s in zip(names, shapes):
            parts[n] = flat[i : i + s.numel()].reshape(s)
            i += s.numel()
        return nn.functional.cross_entropy(torch.func.functional_call(model, parts, (x,)), y)

    flat = flat0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(flat), flat)
    return grad.numpy(), torch.autograd.functional.hessian(loss, flat0).numpy()


def test_small_rho_on_a_network_matches_the_dense_taylor_model():
    model = mlp().eval()
    x, y = data()
    g, h = dense_grad_hessian(model, x, y)
    rho = 1e-3
    worst = worst_case_sharpness(model, nn.CrossEntropyLoss(), [(x, y)], [rho], steps=30)
    # third-order terms are O(rho^3) against O(rho) here
    assert worst.mean[0] == pytest.approx(trs_max(g, h, rho), rel=1e-4)
    rho, draws = 1e-2, 400
    avg = average_case_sharpness(model, nn.CrossEntropyLoss(), [(x, y)], [rho], draws=draws, seed=0)
    mc_sd = rho**2 / 2 * np.sqrt(2 * np.trace(h @ h) / draws)
    assert abs(avg.mean[0] - rho**2 * np.trace(h) / 2) < 4 * mc_sd + 1e-3 * rho**2 * abs(np.trace(h))


def test_model_is_not_modified_runs_in_eval_mode_and_restores_flags():
    model = mlp().train()
    model[1].eval()  # a mixed state that must come back exactly
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    x, y = data()
    batches = sub_batches(x, y, m=16, samples=48, seed=0)
    for res in (
        worst_case_sharpness(model, nn.CrossEntropyLoss(), batches, [0.05], norm="linf", adaptive=True, steps=3),
        average_case_sharpness(model, nn.CrossEntropyLoss(), batches, [0.05], draws=2),
    ):
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
        assert [m.training for m in model.modules()] == flags
        model.eval()
        with torch.no_grad():
            eval_losses = [float(nn.functional.cross_entropy(model(bx), by)) for bx, by in batches]
        for m_, flag in zip(model.modules(), flags):
            m_.training = flag
        np.testing.assert_allclose(res.base_loss, eval_losses, rtol=1e-12)
        assert res.settings["m"] == 16 and res.settings["n_batches"] == 3


def test_reproducible_by_seed_and_chunking_does_not_change_values():
    model = mlp().eval()
    x, y = data()
    batches = sub_batches(x, y, m=24, seed=3)
    loss = nn.CrossEntropyLoss()
    a = average_case_sharpness(model, loss, batches, [0.05, 0.1], draws=4, seed=11)
    b = average_case_sharpness(model, loss, batches, [0.05, 0.1], draws=4, seed=11, batch_size=7)
    c = average_case_sharpness(model, loss, batches, [0.05, 0.1], draws=4, seed=12)
    np.testing.assert_allclose(a.per_batch, b.per_batch, rtol=1e-10)
    assert not np.allclose(a.per_batch, c.per_batch)
    w1 = worst_case_sharpness(model, loss, batches, [0.05], steps=5)
    w2 = worst_case_sharpness(model, loss, batches, [0.05], steps=5, batch_size=10)
    np.testing.assert_allclose(w1.per_batch, w2.per_batch, rtol=1e-9)
    again = sub_batches(x, y, m=24, seed=3)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(batches, again))


def test_sub_batches_cut_a_seeded_subset_into_exact_m():
    x, y = torch.arange(50).float()[:, None], torch.arange(50)
    parts = sub_batches(x, y, m=8, samples=30, seed=0)
    assert [len(p[1]) for p in parts] == [8, 8, 8]
    used = torch.cat([p[1] for p in parts])
    assert len(set(used.tolist())) == 24
    assert torch.equal(used, torch.randperm(50, generator=torch.Generator().manual_seed(0))[:24])
    assert len(sub_batches(x, y, m=8, samples=None)) == 6


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sub_batches(torch.zeros(5, 1), torch.zeros(5), m=0), "m (sub-batch size)"),
        (lambda: sub_batches(torch.zeros(5, 1), torch.zeros(5), m=8), "larger than the 5 samples"),
        (lambda: worst_case_sharpness(mlp(), nn.CrossEntropyLoss(), [data(4)], [0.1, -1]), "rho must be"),
        (lambda: worst_case_sharpness(mlp(), nn.CrossEntropyLoss(), [data(4)], []), "rho list is empty"),
        (lambda: worst_case_sharpness(mlp(), nn.CrossEntropyLoss(), [data(4)], [0.1], norm="l1"), "unknown norm"),
        (lambda: worst_case_sharpness(mlp(), nn.CrossEntropyLoss(), [data(4), data(6)], [0.1]), "same size"),
        (lambda: average_case_sharpness(mlp(), nn.CrossEntropyLoss(), [data(4)], [0.1], draws=0), "draws"),
    ],
)
def test_bad_input_raises_one_line_errors(call, message):
    with pytest.raises(LandscapeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
