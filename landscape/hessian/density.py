"""Spectral density of the Hessian by stochastic Lanczos quadrature (SLQ).

Each of ``runs`` independent runs starts Lanczos (full reorthogonalisation)
from a normalised Rademacher vector ``q = z / sqrt(P)`` and takes ``steps``
products.  The eigen-decomposition of the tridiagonal ``T`` (``scipy``'s
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
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from landscape.errors import LandscapeError
from landscape.hessian.krylov import Krylov, generator, rademacher
from landscape.hessian.lanczos import check_positive_int
from landscape.hessian.operator import as_operator

SLQ_STREAM = 2


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

    def moment(self, power: int) -> float:
        """``sum_i w_i theta_i^power``: estimates ``(1/P) tr(H^power)``."""
        return float(sum(np.dot(w, np.asarray(t) ** power) for t, w in zip(self.nodes, self.weights)))

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("grid", "density", "bandwidth", "nodes", "weights", "runs", "steps",
                                              "hvps", "seconds", "seed")}


def gauss_quadrature(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) of the Gauss rule of the tridiagonal ``(alpha, beta)``."""
    if len(alpha) == 1:
        return alpha.copy(), np.ones(1)
    theta, vecs = eigh_tridiagonal(alpha, beta)
    return theta, vecs[0] ** 2


def smooth(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian-smoothed density ``sum_i w_i N(grid; nodes_i, bandwidth^2)`` on ``grid``."""
    z = (grid[:, None] - nodes[None, :]) / bandwidth
    return (np.exp(-0.5 * z**2) @ weights) / (bandwidth * math.sqrt(2 * math.pi))


def spectral_density(model, loss_fn=None, data=None, runs: int = 4, steps: int = 40, seed: int = 0,
                     grid: int | Sequence[float] = 1000, bandwidth: float | None = None) -> DensityResult:
    """SLQ spectral density of the Hessian: ``runs x steps`` products (fewer if a run's space is invariant).

    ``model`` may be an ``nn.Module`` (with ``loss_fn`` and ``data``) or an
    operator.  ``grid`` is a number of points or explicit abscissae;
    ``bandwidth`` (eigenvalue units) defaults to ``range / (2 * steps)``.
    """
    op = as_operator(model, loss_fn, data)
    runs = check_positive_int(runs, "runs")
    steps = check_positive_int(steps, "steps")
    if bandwidth is not None and not bandwidth > 0:
        raise LandscapeError(f"bandwidth must be > 0, got {bandwidth!r}")
    start = time.perf_counter()
    gen = generator(seed, SLQ_STREAM)
    like = torch.empty(0, dtype=op.dtype, device=op.device)
    nodes, weights, hvps = [], [], 0
    for _ in range(runs):
        krylov = Krylov(op, gen, start=rademacher(op.size, gen, like), restart=False)
        while krylov.steps < steps and not krylov.exhausted:
            krylov.step()
        hvps += krylov.steps
        theta, tau = gauss_quadrature(*krylov.alpha_beta())
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
        seconds=time.perf_counter() - start, seed=seed,
    )
