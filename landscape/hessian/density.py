"""Spectral density of the Hessian by stochastic Lanczos quadrature (SLQ).

Each of ``runs`` independent runs starts Lanczos (full reorthogonalisation)
from a normalised random vector and takes ``steps`` products.  Fresh runs
start from a Rademacher ``q = z / sqrt(P)``; a shared run (``krylov=``, the
basis the top-k eigenvalues and the trace already built, which starts from a
Gaussian ``z / ||z||``, uniform on the sphere) is the first run: its leading
``steps`` Lanczos coefficients are exactly those of a fresh run from that
start, so it costs only the steps it lacks.  Both starts have
``E[q q^T] = I / P``, so every run is an unbiased sample.  The eigen-decomposition of the tridiagonal ``T`` (``scipy``'s
``eigh_tridiagonal``) gives Gauss quadrature nodes ``theta_i`` and weights
``tau_i = (first component of the i-th eigenvector)^2`` with
``sum_i tau_i g(theta_i) ~ q^T g(H) q``, exact for polynomials of degree
``< 2 * steps``.  Averaging runs (weights divided by ``runs``) estimates the
spectral measure ``(1/P) sum_j delta(t - lambda_j)``: its zeroth moment is 1
and its first is ``tr(H)/P`` in expectation.

Smoothing: ``density(t) = sum_i w_i N(t; theta_i, sigma^2)``.  An ``m``-node
rule resolves spectral features of width about ``(theta_max - theta_min)/m``,
so the default bandwidth is ``sigma = (theta_max - theta_min) / (2 * steps)``.
The default grid has 1000 points over ``[theta_min - 4 sigma, theta_max + 4 sigma]``.

How many runs (``runs=None``): for ``q`` uniform on the sphere and a
spectral window holding a fraction ``p`` of the eigenvalues, ``q^T 1_w(H) q``
is Beta(pP/2, (1-p)P/2) with variance ``2 p (1-p) / (P + 2)``, whatever the
eigenvalues are.  Runs are added until every window holding at least
``min_mass`` of the spectrum has a relative standard error ``<= rtol``:
``R = ceil(2 (1 - min_mass) / ((P + 2) min_mass rtol^2))``, at most
``max_runs``.  A large network (P ~ 10^5) needs one run, which the shared
Krylov basis provides; a small problem gets more.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from landscape.checks import check_positive_int
from landscape.errors import LandscapeError
from landscape.hessian.krylov import Krylov, generator, rademacher
from landscape.hessian.operator import as_operator

SLQ_STREAM = 2
MAX_RUNS, RTOL, MIN_MASS = 4, 0.1, 0.01


def runs_needed(size: int, rtol: float = RTOL, min_mass: float = MIN_MASS, max_runs: int = MAX_RUNS) -> int:
    """SLQ runs for a relative standard error ``<= rtol`` on every window of mass ``>= min_mass`` (see above)."""
    need = math.ceil(2 * (1 - min_mass) / ((size + 2) * min_mass * rtol**2))
    return int(min(max(need, 1), max_runs))


@dataclass
class DensityResult:
    """SLQ nodes/weights (``[runs][m]`` nested lists; weights of all runs sum to 1) and the smoothed density."""

    nodes: list[list[float]]
    weights: list[list[float]]
    grid: list[float]
    density: list[float]
    bandwidth: float
    runs: int
    steps: int
    hvps: int
    seconds: float
    seed: int
    shared_hvps: int = 0

    def moment(self, power: int) -> float:
        """``sum_i w_i theta_i^power``: estimates ``(1/P) tr(H^power)``."""
        return float(sum(np.dot(w, np.asarray(t) ** power) for t, w in zip(self.nodes, self.weights)))

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("grid", "density", "bandwidth", "nodes", "weights", "runs", "steps",
                                              "hvps", "shared_hvps", "seconds", "seed")}


def gauss_quadrature(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) of the Gauss rule of the tridiagonal ``(alpha, beta)``."""
    if len(alpha) == 1:
        return alpha.copy(), np.ones(1)
    from scipy.linalg import eigh_tridiagonal  # on first use: importing scipy.linalg costs ~0.1 s per process

    theta, vecs = eigh_tridiagonal(alpha, beta)
    return theta, vecs[0] ** 2


def smooth(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian-smoothed density ``sum_i w_i N(grid; nodes_i, bandwidth^2)`` on ``grid``."""
    z = (grid[:, None] - nodes[None, :]) / bandwidth
    return (np.exp(-0.5 * z**2) @ weights) / (bandwidth * math.sqrt(2 * math.pi))


def spectral_density(model, loss_fn=None, data=None, runs: int | None = None, steps: int = 40, seed: int = 0,
                     grid: int | Sequence[float] = 1000, bandwidth: float | None = None,
                     krylov: Krylov | None = None, max_hvps: int | None = None) -> DensityResult:
    """SLQ spectral density of the Hessian: ``runs x steps`` products (fewer if a run's space is invariant).

    ``model`` may be an ``nn.Module`` (with ``loss_fn`` and ``data``) or an
    operator.  ``runs=None`` takes :func:`runs_needed`.  ``krylov`` (a basis
    from a random start on the same operator) is the first run: its products
    are counted in ``shared_hvps``, and ``hvps`` counts only the new ones.
    ``max_hvps`` caps the new products (the shared run is cut short and
    fresh runs dropped rather than exceed it).  ``grid`` is a number of
    points or explicit abscissae; ``bandwidth`` (eigenvalue units) defaults
    to ``range / (2 * steps)``.
    """
    op = as_operator(model, loss_fn, data)
    runs = runs_needed(op.size) if runs is None else check_positive_int(runs, "runs")
    steps = check_positive_int(steps, "steps")
    if bandwidth is not None and not bandwidth > 0:
        raise LandscapeError(f"bandwidth must be > 0, got {bandwidth!r}")
    if krylov is not None and not krylov.random_start:
        raise LandscapeError("a shared Krylov basis must start from a random vector to be an SLQ sample")
    left = math.inf if max_hvps is None else int(max_hvps)
    start = time.perf_counter()
    gen = generator(seed, SLQ_STREAM)
    like = torch.empty(0, dtype=op.dtype, device=op.device)
    alphas_betas, hvps, shared = [], 0, 0
    if krylov is not None:
        shared = min(krylov.first_block(), steps)
        while krylov.m < steps and krylov.block_start == 0 and not krylov.exhausted and hvps < left:
            krylov.step()
            hvps += 1
        alphas_betas.append(krylov.alpha_beta(min(krylov.first_block(), steps)))
    while len(alphas_betas) < runs and hvps + steps <= left:
        fresh = Krylov(op, gen, start=rademacher(op.size, gen, like), restart=False)
        while fresh.steps < steps and not fresh.exhausted:
            fresh.step()
        hvps += fresh.steps
        alphas_betas.append(fresh.alpha_beta())
    if not alphas_betas:
        raise LandscapeError(f"max_hvps={max_hvps} leaves no SLQ run of {steps} steps")
    runs = len(alphas_betas)
    nodes, weights = [], []
    for alpha, beta in alphas_betas:
        theta, tau = gauss_quadrature(alpha, beta)
        nodes.append(theta)
        weights.append(tau / runs)
    flat_nodes, flat_weights = np.concatenate(nodes), np.concatenate(weights)
    lo, hi = float(flat_nodes.min()), float(flat_nodes.max())
    if bandwidth is None:
        bandwidth = (hi - lo) / (2 * steps) if hi > lo else max(abs(hi), 1.0) * 1e-3
    if isinstance(grid, (int, np.integer)):
        points = check_positive_int(grid, "grid", 2)
        abscissae = np.linspace(lo - 4 * bandwidth, hi + 4 * bandwidth, points)
    else:
        abscissae = np.asarray(grid, dtype=float)
        if abscissae.ndim != 1 or len(abscissae) < 2:
            raise LandscapeError("grid must be a number of points or a 1-D sequence of at least 2 values")
    dens = smooth(flat_nodes, flat_weights, abscissae, bandwidth)
    return DensityResult(
        nodes=[t.tolist() for t in nodes], weights=[w.tolist() for w in weights], grid=abscissae.tolist(),
        density=dens.tolist(), bandwidth=float(bandwidth), runs=runs, steps=steps, hvps=hvps,
        seconds=time.perf_counter() - start, seed=seed, shared_hvps=shared,
    )
