"""Stochastic estimators: trace (Hutchinson, Hutch++) and SLQ density, against exact answers over seeds."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from test_hessian_models import batches, one_thread, reference  # noqa: F401
from torch import nn

from landscape.errors import LandscapeError
from landscape.hessian import (
    ConvergenceWarning,
    MatrixOperator,
    hvp_operator,
    spectral_density,
    top_eigenvalues,
    trace,
)
from landscape.hessian.density import gauss_quadrature, smooth
from landscape.hessian.krylov import Krylov, generator

CE = nn.CrossEntropyLoss()


def network_like(n: int = 120, seed: int = 0) -> torch.Tensor:
    """A few large outliers over a bulk of small eigenvalues of both signs, as in trained networks."""
    g = torch.Generator().manual_seed(seed)
    ev = torch.cat([torch.tensor([30.0, 20.0, 12.0, 8.0], dtype=torch.float64),
                    0.3 + 0.4 * torch.randn(n - 4, generator=g, dtype=torch.float64)])
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    a = q @ torch.diag(ev) @ q.T
    return (a + a.T) / 2


A = network_like()
TRUE = float(A.trace())


@pytest.mark.parametrize("method, rtol, budget", [("hutch++", 0.02, 120), ("hutchinson", 0.05, 120)])
def test_ci_covers_the_true_trace_in_200_seeded_trials(method, rtol, budget):
    covered, stops = 0, set()
    for seed in range(200):
        res = trace(MatrixOperator(A), method=method, rtol=rtol, max_hvps=budget, seed=seed)
        covered += res.ci[0] <= TRUE <= res.ci[1]
        stops.add(res.stopped_by)
        assert res.hvps <= budget and res.ci[0] < res.estimate < res.ci[1]
    assert covered >= 180, f"{method}: 95% CI covered the trace in {covered}/200 trials"
    assert stops <= {"rtol", "budget", "unreachable"}


@pytest.mark.parametrize("method", ["hutch++", "hutchinson"])
def test_an_unreachable_target_stops_after_the_pilot_with_one_warning_and_a_covering_ci(method):
    big, budget = network_like(1000, seed=7), 400
    covered, truth, lines = 0, float(big.trace()), []
    for seed in range(200):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = trace(MatrixOperator(big), method=method, rtol=0.001, max_hvps=budget, seed=seed)
        covered += res.ci[0] <= truth <= res.ci[1]
        assert res.stopped_by == "unreachable" and res.hvps <= budget // 8 and res.samples == 20
        assert [w.category for w in caught] == [ConvergenceWarning]
        lines.append(str(caught[0].message))
    assert covered >= 180, f"{method}: 95% CI covered the trace in {covered}/200 trials"
    assert all("\n" not in m for m in lines)
    needs = [int(re.search(r"needs about (\d+) HVPs", m).group(1)) for m in lines]
    assert min(needs) > budget  # the warning names the products the target would need
    spent = trace(MatrixOperator(big), method=method, rtol=0.001, max_hvps=budget, seed=0, stop_early=False)
    assert spent.stopped_by == "budget" and spent.hvps == budget


@pytest.mark.parametrize("method", ["hutch++", "hutchinson"])
def test_estimators_are_unbiased_within_their_own_ci(method):
    runs = [trace(MatrixOperator(A), method=method, rtol=0.0, max_hvps=30, seed=s) for s in range(100)]
    mean = np.mean([r.estimate for r in runs])
    pooled = math.sqrt(sum(r.stderr**2 for r in runs)) / len(runs)
    assert abs(mean - TRUE) <= 4 * pooled
    assert all(r.stopped_by == "budget" and r.hvps == 30 for r in runs)


def test_hutchpp_beats_hutchinson_on_a_network_like_spectrum():
    big = network_like(400, seed=5)
    pp = trace(MatrixOperator(big), method="hutch++", rtol=0.02, max_hvps=200, seed=0)
    plain = trace(MatrixOperator(big), method="hutchinson", rtol=0.02, max_hvps=200, seed=0, stop_early=False)
    assert pp.stopped_by == "rtol" and pp.hvps <= 100 and pp.rank >= 4
    assert plain.stopped_by == "budget" and plain.stderr > 2 * pp.stderr  # with 2x+ the products
    assert (pp.ci[1] - pp.ci[0]) / 2 <= 0.02 * abs(pp.estimate)


def test_trace_is_exact_when_the_basis_spans_the_space():
    small = network_like(12, seed=3)
    res = trace(MatrixOperator(small), rtol=0.01, max_hvps=40)
    assert res.stopped_by == "exact" and res.hvps == 12 and res.stderr == 0
    assert res.estimate == pytest.approx(float(small.trace()), rel=1e-12)


def test_model_trace_reuses_the_lanczos_basis():
    model, x, y, h, _ = reference("cnn")
    op = hvp_operator(model, CE, batches(x, y, 16))
    krylov = Krylov(op, generator(0, 0))
    eig = top_eigenvalues(op, k=2, tol=1e-3, krylov=krylov)
    res = trace(op, rtol=0.01, max_hvps=120, krylov=krylov)
    assert op.hvps == eig.hvps + res.hvps and res.rank >= eig.hvps
    assert res.ci[0] <= float(h.trace()) <= res.ci[1]
    assert res.to_dict()["ci"] == list(res.ci)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "exact"}, "unknown trace method"),
    ({"rtol": -0.1}, "rtol must be >= 0"),
    ({"max_hvps": 5}, "max_hvps must be an integer >= 14"),
    ({"method": "hutchinson", "min_samples": 1}, "min_samples must be an integer >= 2"),
])
def test_trace_bad_arguments(kwargs, message):
    with pytest.raises(LandscapeError, match=message):
        trace(MatrixOperator(A), **kwargs)


# ------------------------------------------------------------------------ SLQ density
def test_slq_moments_on_a_model_hessian():
    model, x, y, h, ev = reference("cnn")
    res = spectral_density(MatrixOperator(h), runs=64, steps=12, seed=0)
    assert res.moment(0) == pytest.approx(1.0, abs=1e-12) and res.hvps == 64 * 12
    # first moment: mean of q^T H q = z^T H z / P over runs; exact Rademacher variance gives the error bar
    p = h.shape[0]
    var = 2 * (float((h**2).sum()) - float((torch.diagonal(h) ** 2).sum())) / p**2
    assert abs(res.moment(1) - float(h.trace()) / p) <= 4 * math.sqrt(var / 64)
    # nodes are Ritz values: inside the spectrum
    nodes = np.concatenate(res.nodes)
    assert nodes.min() >= float(ev[0]) - 1e-10 and nodes.max() <= float(ev[-1]) + 1e-10
    # on the model operator itself: the same first step, so the same first moment to rounding
    direct = spectral_density(model, CE, batches(x, y, 16), runs=2, steps=3, seed=0)
    again = spectral_density(MatrixOperator(h), runs=2, steps=3, seed=0)
    assert direct.moment(0) == pytest.approx(1.0, abs=1e-12)
    assert direct.moment(1) == pytest.approx(again.moment(1), rel=1e-10)
    np.testing.assert_allclose(np.concatenate(direct.nodes), np.concatenate(again.nodes), rtol=1e-8, atol=1e-10)


def test_gauss_quadrature_is_exact_to_degree_2m_minus_1():
    g = np.random.default_rng(0)
    alpha, beta = g.normal(size=5), np.abs(g.normal(size=4)) + 0.1
    t = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    nodes, weights = gauss_quadrature(alpha, beta)
    for power in range(10):
        assert np.dot(weights, nodes**power) == pytest.approx(np.linalg.matrix_power(t, power)[0, 0], rel=1e-10,
                                                              abs=1e-12)


def test_smoothed_density_integrates_to_one_and_uses_the_documented_bandwidth():
    res = spectral_density(MatrixOperator(A), runs=3, steps=20, seed=1)
    nodes, weights = np.concatenate(res.nodes), np.concatenate(res.weights)
    assert res.bandwidth == pytest.approx((nodes.max() - nodes.min()) / 40)
    assert len(res.grid) == 1000 and np.trapezoid(res.density, res.grid) == pytest.approx(1.0, abs=1e-4)
    expect = sum(w * stats.norm.pdf(res.grid, t, res.bandwidth) for t, w in zip(nodes, weights))
    np.testing.assert_allclose(res.density, expect, rtol=1e-10, atol=1e-14)
    custom = spectral_density(MatrixOperator(A), runs=3, steps=20, seed=1, grid=[0.0, 1.0, 2.0], bandwidth=0.5)
    np.testing.assert_allclose(custom.density, smooth(nodes, weights, np.array([0.0, 1.0, 2.0]), 0.5))
    assert custom.nodes == res.nodes  # same seed, same runs
    with pytest.raises(LandscapeError, match="bandwidth must be > 0"):
        spectral_density(MatrixOperator(A), bandwidth=0.0)


def test_slq_stops_at_an_invariant_space():
    small = network_like(8, seed=4)
    res = spectral_density(MatrixOperator(small), runs=2, steps=30, seed=0)
    assert res.hvps <= 16 and all(len(n) <= 8 for n in res.nodes)
    # with the full Krylov space the rule is exact for every moment: q^T H^2 q averages to tr(H^2)/P
    assert res.moment(0) == pytest.approx(1.0)


def test_the_densitys_first_slq_run_is_the_top_k_lanczos_run():
    op = MatrixOperator(A)
    krylov = Krylov(op, generator(0, 0))
    eig = top_eigenvalues(op, k=3, tol=1e-3, krylov=krylov)
    tr = trace(op, rtol=0.05, max_hvps=60, krylov=krylov)
    m, before = krylov.m, op.hvps
    assert tr.shared_hvps == eig.hvps and op.hvps == eig.hvps + tr.hvps
    # same basis: the first run's rule is the Gauss rule of the shared run's leading coefficients; no extra HVPs
    one = spectral_density(op, runs=1, steps=m, krylov=krylov)
    assert (one.hvps, one.shared_hvps, op.hvps) == (0, m, before)
    np.testing.assert_array_equal(one.nodes[0], gauss_quadrature(*krylov.alpha_beta())[0])
    # ... and the same rule as a fresh Lanczos run from the same random start
    fresh = Krylov(MatrixOperator(A), generator(0, 0), restart=False)
    for _ in range(m):
        fresh.step()
    np.testing.assert_allclose(one.nodes[0], gauss_quadrature(*fresh.alpha_beta())[0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(one.weights[0], gauss_quadrature(*fresh.alpha_beta())[1], rtol=1e-6, atol=1e-12)
    # further runs cost exactly their own steps; a longer run extends the shared one and counts the extension
    three = spectral_density(op, runs=3, steps=m, krylov=krylov)
    assert (three.hvps, three.shared_hvps, op.hvps) == (2 * m, m, before + 2 * m)
    longer = spectral_density(op, runs=1, steps=m + 5, krylov=krylov)
    assert (longer.hvps, longer.shared_hvps, krylov.m) == (5, m, m + 5)
    # a capped density never exceeds its budget, and a non-random start is refused
    capped = spectral_density(op, runs=4, steps=m + 10, krylov=krylov, max_hvps=12)
    assert capped.hvps <= 12 and capped.runs == 1
    with pytest.raises(LandscapeError, match="random vector"):
        spectral_density(op, krylov=Krylov(op, generator(0, 0), start=torch.ones(A.shape[0], dtype=A.dtype)))


def test_shared_slq_runs_are_unbiased_and_runs_follow_the_beta_variance():
    # the first moment of one shared run from a Gaussian start averages to tr(H)/P over seeds
    moments = [spectral_density(MatrixOperator(A), runs=1, steps=6,
                                krylov=Krylov(MatrixOperator(A), generator(s, 0))).moment(1) for s in range(300)]
    assert abs(np.mean(moments) - TRUE / A.shape[0]) <= 4 * np.std(moments) / math.sqrt(300)
    from landscape.hessian.density import runs_needed

    assert runs_needed(389_000) == 1 and runs_needed(120) == 4 and runs_needed(5000) == 4
    assert runs_needed(19_000) == 2  # ceil(2 * 0.99 / (19002 * 0.01 * 0.01)) = 2
