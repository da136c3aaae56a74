r"""Worst-case m-sharpness by projected gradient ascent.

For sub-batches B of size m, radius rho, norm p in {2, inf} and scaling c
(``c = 1`` standard, ``c = |w|`` elementwise adaptive)::

    S_worst(rho) = mean_B [ max_{||u||_p <= rho} L_B(w + c * u) - L_B(w) ]

i.e. ``max_{||delta / c||_p <= rho}`` with ``delta = c * u``. The norm is over
all trainable parameters together. The inner maximum is found by monotone
projected steepest ascent in ``u``:

1. start at ``u_0 = rho * steepest(grad_u L_B(w))`` on the sphere: the
   normalised gradient for l2, ``rho * sign(grad)`` for linf (the SAM point;
   a seeded random direction if the gradient is exactly zero);
2. for ``steps`` iterations propose
   ``u' = Proj(u + eta * rho * steepest(g) + beta * (u - u_prev))`` with ``g``
   the gradient at ``u`` and heavy-ball momentum ``beta = 0.75`` over the last
   accepted move; accept it if the loss rose and double ``eta`` (capped at 4),
   else keep ``u``, drop the momentum and halve ``eta`` (``eta`` starts at 1);
   stop early when the proposal equals ``u``;
3. the value is the best loss seen, including ``u = 0``, so ``S >= 0``.

Every iterate is feasible, so the estimate never exceeds the true maximum.
For l2 on a quadratic (a trust-region problem, which has at most one
non-global local maximum, Martinez 1994) the ascent reaches the global
maximum given enough steps; the linf maximum of a non-concave function
is NP-hard in general (box-constrained QP) and the ascent may stop at a
local maximum, i.e. a vertex or face where every coordinate is locally best.

Each sub-batch costs one forward+backward pass at ``w`` and at most
``steps + 1`` per radius. The model runs in eval mode and is never modified.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from landscape import distributed
from landscape.errors import LandscapeError
from landscape.progress import progress_bar
from landscape.sharpness.balls import (
    check_norm,
    check_rhos,
    project,
    random_direction,
    same,
    steepest,
)
from landscape.sharpness.batches import Batch, batch_size_of
from landscape.sharpness.functional import PerturbedLoss
from landscape.sharpness.result import SharpnessResult, run_settings, summed_over_ranks
from landscape.tensors import Vector, eval_mode

DEFAULT_STEPS = 20
_ETA_START, _ETA_MAX, _GROW, _SHRINK, _MOMENTUM = 1.0, 4.0, 2.0, 0.5, 0.75


def worst_case_sharpness(
    model: nn.Module,
    loss_fn: Callable,
    batches: Sequence[Batch],
    rhos: Sequence[float],
    norm: str = "l2",
    adaptive: bool = False,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
) -> SharpnessResult:
    """Worst-case m-sharpness of ``model`` for every radius in ``rhos``.

    ``batches`` is a list of ``(x, y)`` sub-batches of equal size m (see
    :func:`landscape.sharpness.sub_batches`); ``loss_fn(outputs, y)`` returns
    the mean loss. ``batch_size`` caps images per forward pass (None: m).
    ``seed`` drives only the random start used when a gradient is exactly zero.
    Under ``torchrun`` the sub-batches are split over the ranks and the
    results summed (the random start then comes from each rank's own stream).
    """
    norm = check_norm(norm)
    rhos = check_rhos(rhos)
    batches = list(batches)
    m = batch_size_of(batches)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise LandscapeError(f"steps must be an integer >= 0, got {steps!r}")
    generator = torch.Generator().manual_seed(seed)
    values = np.zeros((len(batches), len(rhos)))
    base_losses, passes = np.zeros(len(batches)), 0
    mine = distributed.shard(len(batches))  # all of them in one process
    start = time.perf_counter()
    with eval_mode(model), progress_bar("worst-case sharpness", len(mine) * len(rhos), progress) as bar:
        f = PerturbedLoss(model, loss_fn, adaptive=adaptive, chunk=batch_size)
        for b, batch in enumerate(batches):
            if b not in mine:
                continue
            base, grad = f.value_and_grad(f.zeros(), batch)
            passes += 1
            base_losses[b] = base
            direction = steepest(grad, norm) or random_direction(grad, norm, generator)
            for r, rho in enumerate(rhos):
                best, used = _ascend(f, batch, {n: rho * d for n, d in direction.items()}, rho, norm, steps)
                values[b, r] = max(best, base) - base
                passes += used
                bar.advance()
                bar.update(batch=f"{b + 1}/{len(batches)}", rho=rho)
    values, base_losses, passes = summed_over_ranks(values, base_losses, passes)
    settings = run_settings("worst", norm, adaptive, m, len(batches), seed, steps=steps)
    return SharpnessResult(rhos, values, base_losses, settings, passes, time.perf_counter() - start)


def _ascend(f: PerturbedLoss, batch: Batch, u: Vector, rho: float, norm: str, steps: int) -> tuple[float, int]:
    """Monotone projected steepest ascent with momentum from ``u``; returns (best loss, passes)."""
    loss, grad = f.value_and_grad(u, batch)
    passes, eta, previous = 1, _ETA_START, u
    for _ in range(steps):
        d = steepest(grad, norm)
        if d is None:
            break
        moved = {n: t + eta * rho * d[n] + _MOMENTUM * (t - previous[n]) for n, t in u.items()}
        proposal = project(moved, rho, norm)
        if same(proposal, u):
            break
        new_loss, new_grad = f.value_and_grad(proposal, batch)
        passes += 1
        if new_loss > loss:
            previous, u, loss, grad = u, proposal, new_loss, new_grad
            eta = min(eta * _GROW, _ETA_MAX)
        else:
            previous, eta = u, eta * _SHRINK
    return loss, passes
