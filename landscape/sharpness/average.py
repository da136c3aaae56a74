r"""Average-case m-sharpness by antithetic Monte-Carlo.

For sub-batches B of size m, radius rho and scaling c (``c = 1`` standard,
``c = |w|`` elementwise adaptive)::

    S_avg(rho) = mean_B [ E_{delta ~ N(0, rho^2 diag(c^2))} L_B(w + delta) - L_B(w) ]

``rho`` is the standard deviation of each (scaled) coordinate, not a ball
radius. Each sub-batch's expectation is estimated with ``draws`` antithetic
pairs: for ``z_k ~ N(0, I)`` (parameter-shaped, drawn on the CPU from
``torch.Generator().manual_seed(seed)``, fresh for every sub-batch and shared
by all radii)::

    S_B(rho) ~= (1/K) sum_k [ (L_B(w + rho c z_k) + L_B(w - rho c z_k)) / 2 - L_B(w) ]

The pair cancels every odd-order term of the Taylor series, so for a
quadratic ``g'd + d'Ad/2`` each term is exactly ``rho^2 (cz)'A(cz) / 2``,
whose mean is ``rho^2 trace(diag(c) A diag(c)) / 2``. Cost per sub-batch:
``1 + 2 * draws * len(rhos)`` forward passes. The Monte-Carlo standard error of
the mean over sub-batches is reported as ``mc_stderr``. The model runs in
eval mode and is never modified.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from landscape import distributed
from landscape.errors import LandscapeError
from landscape.progress import progress_bar
from landscape.sharpness.balls import check_rhos
from landscape.sharpness.batches import Batch, batch_size_of
from landscape.sharpness.functional import PerturbedLoss
from landscape.sharpness.result import SharpnessResult, run_settings, summed_over_ranks
from landscape.tensors import eval_mode

DEFAULT_DRAWS = 32


def average_case_sharpness(
    model: nn.Module,
    loss_fn: Callable,
    batches: Sequence[Batch],
    rhos: Sequence[float],
    adaptive: bool = False,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
) -> SharpnessResult:
    """Average-case m-sharpness of ``model`` for every ``rho`` in ``rhos``.

    ``batches`` is a list of ``(x, y)`` sub-batches of equal size m;
    ``loss_fn(outputs, y)`` returns the mean loss; ``draws`` is the number
    of antithetic Gaussian pairs per sub-batch; ``batch_size`` caps images
    per forward pass (None: m). Under ``torchrun`` the sub-batches are split
    over the ranks (each still draws every sub-batch's noise, so the numbers
    are those of one process) and the results summed.
    """
    rhos = check_rhos(rhos)
    batches = list(batches)
    m = batch_size_of(batches)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise LandscapeError(f"draws must be a positive integer, got {draws!r}")
    generator = torch.Generator().manual_seed(seed)
    terms = np.zeros((len(batches), len(rhos), draws))
    base_losses, passes = np.zeros(len(batches)), 0
    mine = distributed.shard(len(batches))  # all of them in one process
    start = time.perf_counter()
    with eval_mode(model), progress_bar("average-case sharpness", len(mine) * draws, progress) as bar:
        f = PerturbedLoss(model, loss_fn, adaptive=adaptive, chunk=batch_size)
        zero = f.zeros()
        for b, batch in enumerate(batches):
            if b not in mine:  # another rank's: draw its noise anyway, so the stream stays that of one process
                for _ in range(draws):
                    for w in zero.values():
                        _gaussian(w, generator)
                continue
            base = f.value(zero, batch)
            base_losses[b] = base
            passes += 1
            for k in range(draws):
                z = {n: _gaussian(w, generator) for n, w in zero.items()}
                for r, rho in enumerate(rhos):
                    plus = f.value({n: rho * t for n, t in z.items()}, batch)
                    minus = f.value({n: -rho * t for n, t in z.items()}, batch)
                    terms[b, r, k] = 0.5 * (plus + minus) - base
                passes += 2 * len(rhos)
                bar.advance()
                bar.update(batch=f"{b + 1}/{len(batches)}")
    terms, base_losses, passes = summed_over_ranks(terms, base_losses, passes)
    per_batch = terms.mean(axis=2)
    if draws > 1:
        batch_var = terms.var(axis=2, ddof=1) / draws  # [n_batches x R]
        mc_stderr = (np.sqrt(batch_var.sum(axis=0)) / len(batches)).tolist()
    else:
        mc_stderr = [math.nan] * len(rhos)
    settings = run_settings("average", None, adaptive, m, len(batches), seed, draws=draws)
    return SharpnessResult(rhos, per_batch, base_losses, settings, passes, time.perf_counter() - start, mc_stderr)


def _gaussian(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal tensor shaped like ``like``, drawn on the CPU (same on every device)."""
    dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    return torch.randn(like.shape, generator=generator, dtype=dtype).to(like.device, like.dtype)
