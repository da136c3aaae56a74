"""PAC-Bayes flatness: the largest Gaussian weight noise the training loss tolerates, and Jiang's bound terms.

``flatness_sigma`` finds by bisection (in log sigma) the sigma at which the
Monte-Carlo estimate of the expected degradation under weight noise equals
``target``:

* ``metric="accuracy"`` (default): ``acc(w) - E[acc(w + delta)]``, the
  training-accuracy drop of Jiang et al. and Dziugaite et al. (target 0.1);
* ``metric="loss"``: ``E[L(w + delta)] - L(w)`` (nats), the *loss-increase
  variant*, not the published measure; records name it as such.

Noise: ``delta = sigma * z`` (isotropic), or with ``magnitude_eps`` the
magnitude-aware ``delta_i = z_i * sqrt(sigma^2 w_i^2 + eps^2)``, on every
parameter of the model given (the measure suite passes the BatchNorm-folded
network, whose folded BatchNorm has no parameters left). This is Jiang et
al.'s definition (variance ``sigma^2``, resp. ``sigma^2 w_i^2 + eps^2``).
Dziugaite et al.'s ``_perturbed_model`` differs in two ways: its folded
network keeps each BatchNorm with scale 1 and shift 0 as parameters, which
are perturbed too; and it passes ``sigma^2`` (resp. ``sigma^2 |w_i|^2 + eps^2``)
to ``torch.normal`` as the *standard deviation*, so its isotropic sigma is the
square root of ours. The draws
``z_1..z_K`` are fixed by ``seed`` and reused at every sigma (common random
numbers), so the estimate is a smooth, monotone-in-practice function of sigma
and the search is exactly reproducible. The MC standard error over the K
draws at the returned sigma is reported. BatchNorm is in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

#: Jiang et al.'s magnitude-aware epsilon.
MAG_EPS = 1e-3


@dataclass
class SigmaSearch:
    """Result of :func:`flatness_sigma`."""

    sigma: float
    increase: float
    stderr: float
    target: float
    metric: str
    magnitude_eps: float | None
    draws: int
    evaluations: int
    bracketed: bool
    path: list[tuple[float, float]] = field(default_factory=list)  # (sigma, estimated increase) visited
    note: str | None = None  # why the bracket did not contain the target, or None
    variant: str = ""  # "accuracy drop (Jiang et al.)" or "loss increase (variant)"

    def to_dict(self) -> dict:
        return asdict(self)


def draw(params: dict[str, torch.Tensor], k: int, seed: int) -> dict[str, torch.Tensor]:
    """Standard-normal draw number ``k`` shaped like ``params`` (seeded on CPU, then moved)."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(k))
    return {n: torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.device, p.dtype) for n, p in params.items()}


@torch.no_grad()
def _evaluate(model: nn.Module, loss_fn, batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """(mean loss, accuracy) over the batches, weighted by batch size."""
    p = next(model.parameters())
    loss = correct = n = 0.0
    for x, y in batches:
        x, y = x.to(p.device, p.dtype), y.to(p.device)
        out = model(x)
        loss += float(loss_fn(out, y)) * len(y)
        if out.dim() == 2 and out.shape[1] > 1:
            correct += float((out.argmax(1) == y).sum())
        n += len(y)
    return loss / n, correct / n


def degradation(model: nn.Module, loss_fn, batches, sigma: float, draws: int, seed: int, metric: str = "loss",
                magnitude_eps: float | None = None, base: tuple[float, float] | None = None) -> tuple[float, float]:
    """(mean, standard error) over ``draws`` of the loss increase (or accuracy drop) at noise level ``sigma``."""
    params = dict(model.named_parameters())
    original = {n: p.detach().clone() for n, p in params.items()}
    base = base or _evaluate(model, loss_fn, batches)
    values = []
    try:
        for k in range(draws):
            z = draw(original, k, seed)
            with torch.no_grad():
                for n, p in params.items():
                    scale = (sigma if magnitude_eps is None
                             else torch.sqrt(sigma**2 * original[n] ** 2 + magnitude_eps**2))
                    p.copy_(original[n] + scale * z[n])
            loss, acc = _evaluate(model, loss_fn, batches)
            values.append(loss - base[0] if metric == "loss" else base[1] - acc)
    finally:
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(original[n])
    t = torch.tensor(values, dtype=torch.float64)
    stderr = float(t.std(unbiased=True) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(t.mean()), stderr


#: What each ``metric`` measures, as records name it.
VARIANTS = {"accuracy": "accuracy drop (Jiang et al., Dziugaite et al.)",
            "loss": "loss increase (variant, not the published measure)"}


def flatness_sigma(model: nn.Module, loss_fn, batches, target: float = 0.1, metric: str = "accuracy",
                   magnitude_eps: float | None = None, draws: int = 8, depth: int = 12, lo: float = 1e-4,
                   hi: float = 1.0, rtol: float = 0.02, seed: int = 0, progress=None) -> SigmaSearch:
    """Largest sigma whose expected degradation is ``target`` (see module docstring).

    Bisection in log space on ``[lo, hi]`` for at most ``depth`` steps; it stops
    early once the estimate is within ``rtol * target``. The degradation at
    ``lo`` must be below the target (else ``bracketed`` is False and ``sigma``
    is ``lo``); ``hi`` is multiplied by 10 (at most 4 times) until its
    degradation reaches the target (else ``bracketed`` is False and ``sigma``
    is the last ``hi``). ``note`` says which end failed. ``progress`` is
    called once per evaluation.
    """
    was_training = model.training
    model.eval()
    base = _evaluate(model, loss_fn, batches)
    path: list[tuple[float, float]] = []

    def at(sigma: float) -> tuple[float, float]:
        mean, se = degradation(model, loss_fn, batches, sigma, draws, seed, metric, magnitude_eps, base)
        path.append((sigma, mean))
        if progress is not None:
            progress()
        return mean, se

    note = None
    try:
        value = at(lo)
        sigma = lo
        if value[0] >= target:
            note = (f"the degradation at the lower end sigma={lo:g} ({value[0]:.4g}) already reaches "
                    f"the target {target:g}")
        else:
            value = at(hi)
            expansions = 0
            while value[0] < target and expansions < 4:
                lo, hi = hi, hi * 10
                value = at(hi)
                expansions += 1
            sigma = hi
            if value[0] < target:
                note = (f"the degradation at the upper end sigma={hi:g} ({value[0]:.4g}) stays below "
                        f"the target {target:g}")
        bracketed = note is None
        if bracketed:
            for _ in range(depth):
                sigma = math.sqrt(lo * hi)
                value = at(sigma)
                if abs(value[0] - target) <= rtol * target:
                    break
                if value[0] > target:
                    hi = sigma
                else:
                    lo = sigma
    finally:
        model.train(was_training)
    return SigmaSearch(sigma, value[0], value[1], target, metric, magnitude_eps, draws, len(path), bracketed, path,
                       note, VARIANTS[metric])


def bound_terms(sigma: float, m: int, w: torch.Tensor, w0: torch.Tensor) -> dict:
    """Jiang's isotropic PAC-Bayes terms (Eqs. 48, 49, 53 of Dziugaite et al.'s code) from ``sigma`` and flat weights.

    ``pacbayes_init = ||w - w0||^2 / (4 sigma^2) + log(m / sigma) + 10``;
    ``pacbayes_orig`` the same with ``||w||^2``; ``pacbayes_flatness = 1 / sigma^2``.
    ``m`` is the number of training images.
    """
    w, w0 = w.double(), w0.double()
    tail = math.log(m / sigma) + 10
    return {"pacbayes_init": float((w - w0).pow(2).sum()) / (4 * sigma**2) + tail,
            "pacbayes_orig": float(w.pow(2).sum()) / (4 * sigma**2) + tail,
            "pacbayes_flatness": 1.0 / sigma**2}


def mag_bound_terms(sigma: float, m: int, w: torch.Tensor, w0: torch.Tensor, eps: float = MAG_EPS) -> dict:
    """Jiang's magnitude-aware terms (Eqs. 56, 57, 61 of Dziugaite et al.'s code) from the magnitude-aware ``sigma``.

    ``pacbayes_mag_X = 1/4 sum_i log((eps^2 + (sigma^2 + 1) ||r||^2 / omega) / (eps^2 + sigma^2 (w_i - w0_i)^2))
    + log(m / sigma) + 10`` with ``r = w - w0`` (init, Eq. 56) or ``w`` (orig,
    Eq. 57) and ``omega`` the number of weights; the denominator is Eq. 56's
    (the distance to init per coordinate, in both terms, as in Dziugaite et
    al.'s released code). ``pacbayes_mag_flatness = 1 / sigma^2``.
    """
    w, w0 = w.double(), w0.double()
    omega = w.numel()
    denom = eps**2 + sigma**2 * (w - w0).pow(2)
    tail = math.log(m / sigma) + 10

    def term(r: torch.Tensor) -> float:
        num = eps**2 + (sigma**2 + 1) * float(r.pow(2).sum()) / omega
        return 0.25 * float(torch.log(num / denom).sum()) + tail

    return {"pacbayes_mag_init": term(w - w0), "pacbayes_mag_orig": term(w), "pacbayes_mag_flatness": 1.0 / sigma**2}
